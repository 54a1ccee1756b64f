// The sanity checks pooled over runs (issue 15, parts 6 and 7): runs split by seed or by tiles
// merge into exactly the run made at once; per-tile similarities by hand (logit test with maps of
// known rank order); pooled means over models and tiles.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import type { ProtocolTile } from '../src/eval/protocol/attribution.js';
import { runSanityChecks, verdictOf, type SanityResult } from '../src/eval/protocol/sanity-checks.js';
import { mergeSeedRuns, mergeTileChunks, poolSanity, tileMeans } from '../src/eval/protocol/sanity-models.js';
import { randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

const size = 16;
const tiles: ProtocolTile[] = Array.from({ length: 4 }, (_, t) => {
  const region = new Uint8Array(size * size);
  for (let y = 4; y < 11; y++) for (let x = 3 + t; x < 10 + t; x++) region[y * size + x] = 1;
  return { id: 100 + t, image: randomImage(size, size, 5 + t), region, classId: 2 };
});
// The map of the class is 1, 2, …, N; the other class's map is reversed on tile 100 (Spearman −1),
// the same on 101 (1), its square on 102 (1, same order) and constant-free reversed on 103 (−1).
const known = {
  label: 'known',
  attribute: (tile: ProtocolTile, classId: number) =>
    Float32Array.from({ length: size * size }, (_, i) => {
      if (classId === tile.classId) return i + 1;
      if (tile.id === 100 || tile.id === 103) return size * size - i;
      return tile.id === 101 ? i + 1 : (i + 1) ** 2;
    }),
};
const conditions = [{ label: 'sgc', method: 'seg-grad-cam', layer: 'dec1' }, known];
const strip = (r: SanityResult) =>
  r.conditions.map((c) => ({
    cascading: c.cascading.map((s) => ({ values: s.values, pairTiles: s.pairTiles, scored: s.scored, empty: s.emptyRandomised })),
    independent: c.independent.map((s) => ({ values: s.values, pairTiles: s.pairTiles, scored: s.scored, empty: s.emptyRandomised })),
    logit: c.logit && { values: c.logit.values, pairTiles: c.logit.pairTiles },
    emptyOriginal: c.emptyOriginal,
  }));

describe('pooling sanity runs', () => {
  before(useCpu);
  test('the logit test per tile by hand; runs split by seed or by tiles merge into the run made at once', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(size, 3, 4)));
    const o = { blocks: ['logits', 'dec1'], resamples: 50, otherClass: () => 1 };
    const whole = await runSanityChecks(explainer, tiles, conditions, { ...o, seeds: [1, 2] });
    const k = whole.conditions[1].logit!;
    assert.deepEqual(k.pairTiles, [100, 101, 102, 103]);
    assert.deepEqual(
      k.values.absSpearman.map((v) => Math.round(v * 1e9) / 1e9),
      [-1, 1, 1, -1],
    );
    assert.deepEqual(tileMeans(k, whole.tiles, 'absSpearman').map(Math.round), [-1, 1, 1, -1]);
    // the control ignores the model: every re-initialised map is the trained one, per tile and seed
    assert.deepEqual(whole.conditions[1].cascading[1].pairTiles, [100, 101, 102, 103, 100, 101, 102, 103]);
    const bySeed = mergeSeedRuns([
      await runSanityChecks(explainer, tiles, conditions, { ...o, seeds: [1] }),
      await runSanityChecks(explainer, tiles, conditions, { ...o, seeds: [2] }),
    ]);
    assert.deepEqual(bySeed.options.seeds, [1, 2]);
    assert.deepEqual(strip(bySeed), strip(whole));
    const byTiles = mergeTileChunks([
      await runSanityChecks(explainer, tiles.slice(0, 1), conditions, { ...o, seeds: [1, 2] }),
      await runSanityChecks(explainer, tiles.slice(1), conditions, { ...o, seeds: [1, 2] }),
    ]);
    assert.deepEqual(byTiles.tiles, whole.tiles);
    // within a chunk the order is seed, then tile: compare per tile and seed as sets of pairs
    const pairs = (r: SanityResult) =>
      r.conditions.map((c) =>
        [...c.cascading, ...c.independent].map((s) =>
          s.pairTiles.map((t, i) => `${t}:${s.values.absSpearman[i]}:${s.values.ssim[i]}`).sort(),
        ),
      );
    assert.deepEqual(pairs(byTiles), pairs(whole));
    assert.deepEqual(byTiles.conditions[1].logit!.values, k.values);
    assert.equal(byTiles.conditions[0].emptyOriginal, whole.conditions[0].emptyOriginal);
    assert.throws(() => mergeSeedRuns([whole, whole]), /seed appears in two runs/);
    assert.throws(() => mergeTileChunks([whole, whole]), /tile appears in two chunks/);

    // pooled over two "models" (the same run twice): the mean of the tile means, by hand
    const p = poolSanity([whole, whole], { resamples: 200 });
    assert.equal(p.conditions[1].logit!.similarity.absSpearman.estimate, 0);
    assert.equal(p.conditions[1].verdict.logit, 'pass');
    assert.equal(p.conditions[1].verdict.cascading, 'fail', 'the control ignores the weights');
    assert.equal(p.conditions[1].cascading[1].similarity.absSpearman.estimate, 1);
    assert.equal(p.conditions[1].cascading[1].scored, 16);
    const sgcLast = whole.conditions[0].cascading[1];
    const byTile = tileMeans(sgcLast, whole.tiles, 'spearman').filter(Number.isFinite);
    const want = byTile.reduce((s, x) => s + x, 0) / byTile.length;
    assert.ok(Math.abs(p.conditions[0].cascading[1].similarity.spearman.estimate - want) < 1e-12);
    explainer.dispose();
  });
});

test('the sanity verdict fails a strong correlation of either sign (an inverted map still follows the image)', () => {
  assert.equal(verdictOf(0.49, 0.5), 'pass');
  assert.equal(verdictOf(-0.49, 0.5), 'pass');
  assert.equal(verdictOf(0.5, 0.5), 'fail');
  assert.equal(verdictOf(-0.534, 0.5), 'fail');
  assert.equal(verdictOf(Number.NaN, 0.5), 'undetermined');
});
