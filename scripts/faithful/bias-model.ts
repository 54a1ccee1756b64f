/**
 * ROAD or the sanity checks on ONE model of the bias study, in its own process
 * (scripts/faithful/bias-run.sh starts one per job; scripts/faithful/bias.ts pools them):
 *
 *   node --import tsx scripts/faithful/bias-model.ts DIR OUT.json OPTIONS-JSON
 *
 * OPTIONS-JSON: BiasFaithfulOptions below; OUT.json is rewritten after every chunk of tiles.
 * Tiles: the bias study's held-out tiles (src/eval/bias-study-tiles.ts, index 3 000 000 on, data
 * seed 0): the bias digit on the bias texture; M = the digit's pixels, class = the bias class,
 * context (ROAD's context variant) = the background pixels. Every model sees the same tiles.
 */
import { rename, writeFile } from 'node:fs/promises';
import { setupBackend } from '../../src/backend/index.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';
import { BiasTiles, isBiasArm } from '../../src/data/bias-tiles.js';
import { loadStudyModel } from '../../src/eval/bias-models.js';
import { STUDY_OFFSET } from '../../src/eval/bias-study-tiles.js';
import type { ProtocolTile } from '../../src/eval/protocol/attribution.js';
import { biasConditions } from '../../src/eval/protocol/road-bias.js';
import { runRoad } from '../../src/eval/protocol/road.js';
import { runSanityChecks } from '../../src/eval/protocol/sanity-checks.js';

export interface BiasFaithfulOptions {
  /** Tiles [tileStart, tileEnd) of the study's held-out tiles. */
  tileStart: number;
  tileEnd: number;
  /** Tiles per chunk: the output file is rewritten after every chunk, so a run cut short keeps its finished chunks. */
  chunk: number;
  protocol: 'road' | 'sanity';
  seeds: number[];
  patchSize: number;
  randomOrders: number;
  steps: number;
  /** Condition labels to leave out (e.g. Integrated Gradients from the sanity checks, for time). */
  skip?: string[];
  blocks?: string[];
}

const [modelDir, out, json] = process.argv.slice(2);
const dir = modelDir.replace(/\/+$/, '');
const name = /([a-z]+)-seed(\d+)$/.exec(dir);
if (!name || !isBiasArm(name[1])) throw new Error(`not a bias model folder: ${dir}`);
const o = JSON.parse(json) as BiasFaithfulOptions;
await setupBackend('wasm');
const BIAS_DIGIT = 3;
const BIAS_CLASS = BIAS_DIGIT + 1;
const model = await loadStudyModel({ arm: name[1], seed: Number(name[2]), dir }, BIAS_CLASS);
const explainer = model.explainer;
const size = explainer.adapter.input.height;
const ds = new BiasTiles(await loadTextureMnistAssets(), { arm: 'strong', seed: 0, size, biasDigit: BIAS_DIGIT });
const tiles: ProtocolTile[] = [];
for (let k = o.tileStart; k < o.tileEnd; k++) {
  const index = STUDY_OFFSET + k;
  const t = ds.sample('heldout', index, { biasPresent: true }, BIAS_DIGIT);
  tiles.push({
    id: index,
    image: t.image,
    region: Uint8Array.from(t.labels, (v) => (v === BIAS_CLASS ? 1 : 0)),
    classId: BIAS_CLASS,
    context: Uint8Array.from(t.contextMask),
  });
}
const all = biasConditions(explainer);
const conditions = all.filter((c) => !(o.skip ?? []).includes(c.label));
const tag = `${name[1]}-seed${name[2]}`;
const result: Record<string, unknown> = {
  arm: name[1],
  seed: Number(name[2]),
  dir,
  size,
  conditions: conditions.map((c) => ({
    label: c.label,
    method: typeof c.method === 'string' ? c.method : 'custom',
    layer: c.layer ?? 'n/a',
  })),
  training: model.training,
};
const chunks: unknown[] = [];
result.options = o;
result[o.protocol === 'road' ? 'roadChunks' : 'sanityChunks'] = chunks;
try {
  for (let c = 0; c < tiles.length; c += o.chunk) {
    const part = tiles.slice(c, c + o.chunk);
    chunks.push(
      o.protocol === 'road'
        ? await runRoad(explainer, part, conditions, {
            patchSize: o.patchSize,
            randomOrders: o.randomOrders,
            steps: o.steps,
          })
        : await runSanityChecks(explainer, part, conditions, { seeds: o.seeds, ...(o.blocks ? { blocks: o.blocks } : {}) }),
    );
    await writeFile(`${out}.tmp`, JSON.stringify(result));
    await rename(`${out}.tmp`, out);
    process.stderr.write(`${tag} ${o.protocol}: tiles ${o.tileStart + c + part.length}/${o.tileEnd} (${new Date().toISOString()})\n`);
  }
} finally {
  explainer.dispose();
}
