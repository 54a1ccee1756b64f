/**
 * The gate alone (swap test per model and arm) on the committed bias-study models, printed as
 * text: `node --import tsx scripts/bias/gate.ts [models/bias] [tiles] [generator options JSON]`. The full report runs it too.
 */
import { setupBackend } from '../../src/backend/index.js';
import { BiasTiles, type BiasTilesOptions } from '../../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';
import { findStudyModels, loadStudyModel, segmenterOf } from '../../src/eval/bias-models.js';
import { biasStudyTiles, gateTiles, otherDigitTiles } from '../../src/eval/bias-study-tiles.js';
import { gateModel, judgeArms, type GateTiles, type ModelGate } from '../../src/eval/protocol/gate.js';

const root = process.argv[2] ?? 'models/bias';
const n = Number(process.argv[3] ?? 100);
const gen = JSON.parse(process.argv[4] ?? '{}') as BiasTilesOptions;
await setupBackend('wasm');
const results: ModelGate[] = [];
let tiles: GateTiles | undefined;
for (const entry of await findStudyModels(root)) {
  const m = await loadStudyModel(entry, 4);
  if (!tiles) {
    const ds = new BiasTiles(await loadTextureMnistAssets(), { ...gen, arm: 'strong', seed: 0, size: m.explainer.adapter.input.height });
    tiles = gateTiles(biasStudyTiles(ds, n), otherDigitTiles(ds, n));
  }
  const g = await gateModel(segmenterOf(m), tiles, 4, { arm: m.arm, seed: m.seed }, { resamples: 1000 });
  results.push(g);
  const f = (v: number) => v.toFixed(3);
  console.log(
    `${m.arm}-seed${m.seed}: IoU(3) ${f(g.original.reduce((a, b) => a + b, 0) / n)} → ${f(g.swapped.reduce((a, b) => a + b, 0) / n)}; drop ${f(g.drop.estimate)} [${f(g.drop.low)}, ${f(g.drop.high)}]; others labelled 3 on bias ${f(g.otherRate)} (off ${f(g.otherRatePlain)}); training mean IoU ${m.training.meanIou}`,
  );
  m.explainer.dispose();
}
for (const a of judgeArms(results, { resamples: 1000 })) console.log(JSON.stringify(a));
