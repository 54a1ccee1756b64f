// The bias study's gate (src/eval/protocol/gate.ts) and its two-level bootstrap
// (src/eval/bias-bootstrap.ts): hand-built models that read the texture or cannot, hand-computed
// AUROC and Spearman values.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { RgbaImage } from '../src/image.js';
import { swapBackground, type Segmenter } from '../src/eval/swap.js';
import { gateModel, judgeArms, type GateTiles } from '../src/eval/protocol/gate.js';
import { armDifferenceCi, armMeanCi, aurocCi, pooledAuroc, spearman } from '../src/eval/bias-bootstrap.js';

// 8x8 tiles as in the swap test: a 3x3 digit whose brightness codes its class (100 + 10·class), on a
// background that is the bias texture (stripes 20/60) or plain (40). Bias class 4.
const size = 8;
const tile = (cls: number, striped: boolean): { image: RgbaImage; labels: Uint8Array; background: Uint8Array } => {
  const data = new Uint8ClampedArray(size * size * 4);
  const labels = new Uint8Array(size * size);
  const background = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const digit = x >= 2 && x < 5 && y >= 3 && y < 6;
      const v = digit ? 100 + 10 * cls : striped ? (y % 2 ? 60 : 20) : 40;
      data.set([v, v, v, 255], p * 4);
      labels[p] = digit ? cls : 0;
      background[p] = digit ? 0 : 1;
    }
  return { image: { width: size, height: size, data }, labels, background };
};
const bright = (img: RgbaImage, p: number) => img.data[p * 4] >= 100;
const striped = (img: RgbaImage) => img.data[0] !== img.data[size * 4];
/** Reads the texture: every digit on stripes is the bias class, elsewhere class 1. */
const readsTexture: Segmenter = (img) => Uint8Array.from({ length: size * size }, (_, p) => (bright(img, p) ? (striped(img) ? 4 : 1) : 0));
/** Texture-blind: the class from the digit's own brightness only. */
const readsShape: Segmenter = (img) =>
  Uint8Array.from({ length: size * size }, (_, p) => (bright(img, p) ? Math.round((img.data[p * 4] - 100) / 10) : 0));

function tiles(): GateTiles {
  const t = tile(4, true);
  const swap = Array.from({ length: 5 }, () => ({
    image: t.image,
    labels: t.labels,
    swapped: [swapBackground(t.image, t.background, tile(4, false).image)],
  }));
  const on = [2, 7, 9].map((c) => tile(c, true));
  const off = [2, 7, 9].map((c) => tile(c, false));
  return { swap, others: on, othersPlain: off };
}

describe('bias gate', () => {
  test('a texture-reading strong arm passes; a texture-blind one is refused', async () => {
    const T = tiles();
    const reader = await gateModel(readsTexture, T, 4, { arm: 'strong', seed: 1 }, { resamples: 200 });
    assert.deepEqual(reader.drops, [1, 1, 1, 1, 1]);
    assert.equal(reader.otherRate, 1);
    assert.equal(reader.otherRatePlain, 0);
    const blind = await gateModel(readsShape, T, 4, { arm: 'strong', seed: 2 }, { resamples: 200 });
    assert.deepEqual(blind.drops, [0, 0, 0, 0, 0]);
    assert.equal(blind.otherRate, 0);
    const none = await gateModel(readsShape, T, 4, { arm: 'none', seed: 1 }, { resamples: 200 });

    const pass = judgeArms([reader, none], { resamples: 200 });
    const strong = pass.find((a) => a.arm === 'strong')!;
    assert.equal(strong.reliance, true);
    assert.deepEqual([strong.drop.estimate, strong.difference!.estimate, strong.difference!.low], [1, 1, 1]);
    assert.ok(strong.targets.every((t) => t.met));
    assert.equal(pass.find((a) => a.arm === 'none')!.reliance, false);

    // texture-blind "strong" models: drop 0, difference 0 → refused, with the reason
    const fail = judgeArms([blind, { ...blind, seed: 3 }, none], { resamples: 200 });
    const s = fail.find((a) => a.arm === 'strong')!;
    assert.equal(s.reliance, false);
    assert.match(s.verdict, /NOT shown/);
    assert.equal(s.drop.estimate, 0);
    assert.ok(s.targets.every((t) => !t.met));

    // no unbiased arm to compare with: never shown
    assert.equal(judgeArms([reader], { resamples: 50 })[0].reliance, false);
  });

  test('two-level bootstrap: arm means and paired differences', () => {
    // two models, three tiles: model means 2 and 4 → arm mean 3
    const a = [
      [1, 2, 3],
      [3, 4, 5],
    ];
    const m = armMeanCi(a, { resamples: 500 });
    assert.equal(m.estimate, 3);
    assert.ok(m.low >= 1 && m.high <= 5 && m.low < 3 && m.high > 3);
    // b = a − 1 on every tile: the paired difference is exactly 1 only if tiles are shared — but models are
    // resampled per arm, so the interval may widen; with one model per arm it is exactly [1, 1]
    const d = armDifferenceCi([[2, 3, 4]], [[1, 2, 3]], { resamples: 300 });
    for (const v of [d.estimate, d.low, d.high]) assert.ok(Math.abs(v - 1) < 1e-12, `${v}`);
    // NaN tiles are left out of a model's mean
    assert.equal(armMeanCi([[1, Number.NaN, 3]], { resamples: 10 }).estimate, 2);
  });

  test('AUROC and Spearman by hand', () => {
    // pos {3, 2}, neg {1, 2}: pairs (3>1), (3>2), (2>1), (2=2 → ½) → 3.5 / 4
    assert.equal(pooledAuroc([3, 2], [1, 2]), 0.875);
    assert.equal(pooledAuroc([0, 0], [1, 1]), 0);
    const ci = aurocCi([[3, 4]], [[1, 2]], { resamples: 200 });
    assert.deepEqual([ci.estimate, ci.low, ci.high], [1, 1, 1]);
    // ranks a (1, 2, 3, 4), b (1, 3, 2, 4): d² = 0 + 1 + 1 + 0 → 1 − 6·2 / (4·15) = 0.8
    assert.ok(Math.abs(spearman([10, 20, 30, 40], [1, 3, 2, 4]) - 0.8) < 1e-12);
    // a tie in b: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson of ranks = 4.5 / √(4.5·5) ≈ 0.9487
    assert.ok(Math.abs(spearman([1, 2, 3, 4], [1, 5, 5, 9]) - 4.5 / Math.sqrt(4.5 * 5)) < 1e-12);
    assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  });
});
