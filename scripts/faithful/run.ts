/**
 * Runs the ROAD and sanity-check protocols (src/eval/protocol/road.ts, sanity-checks.ts) on a
 * bundled TextureMNIST U-Net and writes results.json (unrounded) and report.md with the figures.
 *
 *   node --import tsx scripts/faithful/run.ts --model models/unet-texture-mnist-biased/model.json \
 *     --out runs/faithful --road-tiles 100 --sanity-tiles 50 [--seeds 1,2,3] [--blocks logits,dec1]
 *     [--methods seg-grad-cam,grad-cam++,saliency] [--backend wasm|cpu] [--skip-road] [--skip-sanity]
 *
 * Tiles: held-out tiles (index 2 000 000 on) that contain the bias digit on the bias texture; M =
 * the bias digit's pixels, class = the bias class (the same selection as `seg-grad-cam evaluate`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setupBackend, type BackendName } from '../../src/backend/index.js';
import { createTextureMnist } from '../../src/data/assets-node.js';
import { Explainer } from '../../src/explain.js';
import { readModelArtifacts } from '../../src/engine/tfjs/load-node.js';
import { adapterFromArtifacts } from '../../src/engine/tfjs/load.js';
import { classNamesFromMetadata } from '../../src/io/labels.js';
import type { ProtocolCondition, ProtocolTile } from '../../src/eval/protocol/attribution.js';
import { runRoad } from '../../src/eval/protocol/road.js';
import { roadReport } from '../../src/eval/protocol/road-report.js';
import { runSanityChecks } from '../../src/eval/protocol/sanity-checks.js';
import { sanityReport } from '../../src/eval/protocol/sanity-report.js';
import { sobelControl } from '../../src/eval/protocol/controls.js';
import { TILE_OFFSET } from '../../src/eval/setup.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/unet-texture-mnist-biased/model.json' },
    out: { type: 'string', default: 'runs/faithful' },
    'road-tiles': { type: 'string', default: '100' },
    'sanity-tiles': { type: 'string', default: '50' },
    seeds: { type: 'string', default: '1,2,3' },
    blocks: { type: 'string' },
    methods: { type: 'string', default: 'seg-grad-cam,grad-cam++,hires-cam,saliency,gradient-x-input' },
    'patch-size': { type: 'string', default: '4' },
    'random-orders': { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    'skip-road': { type: 'boolean', default: false },
    'skip-sanity': { type: 'boolean', default: false },
    modes: { type: 'string', default: 'cascading,independent' },
  },
});

await setupBackend(a.backend as BackendName);
const artifacts = await readModelArtifacts(a.model!);
const explainer = new Explainer(await adapterFromArtifacts(artifacts), {
  classNames: classNamesFromMetadata(artifacts.userDefinedMetadata),
});
const recipe = ((artifacts.userDefinedMetadata as { dataset?: Record<string, unknown> } | undefined)?.dataset ?? {}) as {
  biasDigit?: number;
  biasTexture?: string;
};
const biasDigit = recipe.biasDigit ?? 3;
const biasClass = biasDigit + 1;
const size = explainer.adapter.input.width;
const ds = await createTextureMnist({ size, seed: 0, biasDigit, biasStrength: 1, biasTextureAtZero: 'unused' });
const want = Math.max(Number(a['road-tiles']), Number(a['sanity-tiles']));
const tiles: ProtocolTile[] = [];
for (let idx = TILE_OFFSET; tiles.length < want; idx++) {
  const s = ds.sample('heldout', idx);
  if (!s.hasBiasDigit || !s.biasBackground) continue;
  const region = Uint8Array.from(s.labels, (v) => (v === biasClass ? 1 : 0));
  if (region.reduce((x, y) => x + y, 0) < Math.max(4, Math.round(0.01 * size * size))) continue;
  tiles.push({ id: idx, image: s.image, region, classId: biasClass });
}
const conditions: ProtocolCondition[] = [
  ...a.methods!.split(',').map((m) => ({ label: m, method: m })),
  { label: 'sobel (control)', attribute: sobelControl },
];
mkdirSync(a.out!, { recursive: true });
const results: Record<string, unknown> = { model: a.model, backend: a.backend };
const md: string[] = [`# Faithfulness and sanity checks: ${a.model}`, ''];
const progress = (what: string) => (d: number, t: number) => {
  if (d % 20 === 0 || d === t) process.stderr.write(`${what}: ${d}/${t}\n`);
};
if (!a['skip-road']) {
  const road = await runRoad(explainer, tiles.slice(0, Number(a['road-tiles'])), conditions, {
    patchSize: Number(a['patch-size']),
    randomOrders: Number(a['random-orders']),
    onProgress: progress('road'),
  });
  results.road = road;
  const r = roadReport(road, { figure: 'road.png' });
  md.push(r.markdown);
  for (const [name, png] of Object.entries(r.images)) writeFileSync(join(a.out!, name), png);
  process.stderr.write(`road: ${road.seconds.toFixed(1)} s\n`);
}
if (!a['skip-sanity']) {
  const sanity = await runSanityChecks(explainer, tiles.slice(0, Number(a['sanity-tiles'])), conditions, {
    seeds: a.seeds!.split(',').map(Number),
    ...(a.blocks ? { blocks: a.blocks.split(',') } : {}),
    modes: a.modes!.split(',') as Array<'cascading' | 'independent'>,
    onProgress: progress('sanity'),
  });
  results.sanity = sanity;
  const r = sanityReport(sanity, { figure: 'sanity-checks.png' });
  md.push(r.markdown);
  for (const [name, png] of Object.entries(r.images)) writeFileSync(join(a.out!, name), png);
  process.stderr.write(`sanity: ${sanity.seconds.toFixed(1)} s\n`);
}
writeFileSync(join(a.out!, 'results.json'), JSON.stringify(results));
writeFileSync(join(a.out!, 'report.md'), md.join('\n'));
explainer.dispose();
