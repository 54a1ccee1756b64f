/**
 * Diagnostic for the CBL table of the bias report (issue 15): how grid saliency's CBL on the strong
 * arm depends on its optimisation budget. The study runs it with 20 Adam steps on an 8×8 mask (to
 * keep the report under 30 minutes); this runs the same held-out tiles and models with other budgets.
 *   node --import tsx scripts/bias/grid-cbl.ts [tiles=20] [arm=strong] [budgets=20x8,100x8,20x8k]
 * A budget is steps x mask size, with a trailing k for the context-only variant (keepRegion: M kept),
 * and optionally :baseline (black, blurred, mean; default black), e.g. 20x8k:blurred.
 */
import { setupBackend } from '../../src/backend/index.js';
import { BiasTiles } from '../../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';
import { findStudyModels, loadStudyModel } from '../../src/eval/bias-models.js';
import { biasStudyTiles } from '../../src/eval/bias-study-tiles.js';
import { contextBiasLocalisation } from '../../src/eval/context-metrics.js';
import { parseBaseline } from '../../src/methods/baseline.js';
import { createMethod } from '../../src/methods/index.js';
import { mask as maskRegion } from '../../src/region/region.js';

const n = Number(process.argv[2] ?? 20);
const arm = process.argv[3] ?? 'strong';
const budgets = (process.argv[4] ?? '20x8,100x8,20x8k').split(',').map((b) => {
  const [spec, baseline = 'black'] = b.split(':');
  const [it, res] = spec.split('x');
  return {
    iterations: Number(it),
    maskResolution: Number.parseInt(res, 10),
    keepRegion: res.endsWith('k'),
    baseline: parseBaseline(baseline),
  };
});
await setupBackend('wasm');
const assets = await loadTextureMnistAssets();
const biasClass = 4;
for (const entry of await findStudyModels('models/bias')) {
  if (entry.arm !== arm) continue;
  const model = await loadStudyModel(entry, biasClass);
  const size = model.explainer.adapter.input.height;
  const ds = new BiasTiles(assets, { arm: 'strong', seed: 0, size, biasDigit: 3 });
  const tiles = biasStudyTiles(ds, n);
  const row: string[] = [];
  for (const { iterations, maskResolution, keepRegion, baseline } of budgets) {
    const method = createMethod('grid-saliency', { iterations, maskResolution, keepRegion, baseline });
    const cbl: number[] = [];
    const t0 = performance.now();
    for (const { tile } of tiles) {
      const region = maskRegion(tile.image.width, tile.image.height, tile.digitMask);
      const e = await model.explainer.explain(tile.image, { region, classId: biasClass, method });
      const v = contextBiasLocalisation(e.heatmap, tile.digitMask, tile.halfMask);
      if (Number.isFinite(v)) cbl.push(v);
      model.explainer.release();
    }
    const mean = cbl.reduce((a, b) => a + b, 0) / cbl.length;
    row.push(
      `${iterations} steps × ${maskResolution}²${keepRegion ? ', M kept' : ''}, baseline ${baseline}: CBL ${mean} (${cbl.length} of ${n} tiles with context saliency, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  console.log(`${entry.arm}-seed${entry.seed}  ${row.join('  |  ')}`);
  model.explainer.dispose();
}
