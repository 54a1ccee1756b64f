/**
 * Diagnostic for the unbiased arm's gate (issue 15): is the bias texture simply harder to segment
 * on, for every digit? Per model and per digit d, the swap test of src/eval/swap.ts with d in place
 * of the bias digit (the same held-out tile indices as the gate's, d drawn on them, the bias
 * texture forced on the half, then re-rendered in every other pool texture, means matched):
 * IoU(d) on the bias texture minus on the swapped renderings. Also the share of the arm's training
 * tiles that show the bias texture, per digit.
 *   node --import tsx scripts/bias/brick-effect.ts [models/bias] [tiles per digit] [arms, comma-separated] [generator options JSON]
 */
import { setupBackend } from '../../src/backend/index.js';
import { BiasTiles, type BiasTilesOptions } from '../../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';
import { findStudyModels, loadStudyModel, segmenterOf } from '../../src/eval/bias-models.js';
import { biasStudyTiles } from '../../src/eval/bias-study-tiles.js';
import { swapTest } from '../../src/eval/swap.js';

const root = process.argv[2] ?? 'models/bias';
const n = Number(process.argv[3] ?? 30);
const arms = (process.argv[4] ?? 'none').split(',');
const gen = JSON.parse(process.argv[5] ?? '{}') as BiasTilesOptions;
await setupBackend('wasm');
const assets = await loadTextureMnistAssets();
const f = (v: number): string => v.toFixed(3);
for (const arm of arms) {
  if (arm === 'strong' || arm === 'weak' || arm === 'none' || arm === 'control') {
    const ds = new BiasTiles(assets, { ...gen, arm, seed: 1, size: 32 });
    const shown = new Array<number>(10).fill(0);
    const all = new Array<number>(10).fill(0);
    for (let i = 0; i < 4000; i++) {
      const t = ds.sample('train', i);
      all[t.digit]++;
      if (t.biasPresent) shown[t.digit]++;
    }
    console.log(
      `${arm} training tiles 0..3999 (seed 1): bias texture on ${f(shown.reduce((a, b) => a + b) / 4000)} of tiles; per digit ${shown.map((s, d) => f(s / all[d])).join(' ')}`,
    );
  }
}
for (const entry of await findStudyModels(root)) {
  if (!arms.includes(entry.arm)) continue;
  const m = await loadStudyModel(entry, 4);
  const seg = segmenterOf(m);
  const row: string[] = [];
  for (let d = 0; d < 10; d++) {
    const ds = new BiasTiles(assets, { ...gen, arm: 'strong', seed: 0, size: 32, biasDigit: d });
    const tiles = biasStudyTiles(ds, n).map((t) => ({ image: t.tile.image, labels: t.tile.labels, swapped: t.swapped }));
    const r = await swapTest(seg, tiles, d + 1, { resamples: 200 });
    const o = r.original.reduce((a, b) => a + b, 0) / n;
    const s = r.swapped.reduce((a, b) => a + b, 0) / n;
    row.push(`${d}: ${f(o)}→${f(s)} (${f(o - s)})`);
  }
  console.log(`${entry.arm}-seed${entry.seed}  ${row.join('  ')}`);
  m.explainer.dispose();
}
