// Issue 15's measuring tools on hand-made cases: Hoyer's CBD/CBL, relevance mass and rank
// accuracy, ROAD's noisy linear imputation, the paired bootstrap CI's coverage, and the swap test
// on two hand-built models (one reads the texture by construction, one cannot).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../src/data/prng.js';
import type { RgbaImage } from '../src/image.js';
import { pairedBootstrapCi } from '../src/eval/bootstrap.js';
import {
  cbdMatrix,
  contextBiasDetection,
  contextBiasLocalisation,
  relevanceMassAccuracy,
  relevanceRankAccuracy,
} from '../src/eval/context-metrics.js';
import { noisyLinearImpute } from '../src/eval/road.js';
import { biasLabelRate, classIou, swapBackground, swapTest, type Segmenter } from '../src/eval/swap.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('context metrics (Hoyer et al. 2019; Arras et al. 2022)', () => {
  // 2x3 map; the object M is the last pixel, the context the other five
  const saliency = [1, 0.5, 0, 0.25, 0, 1];
  const object = [0, 0, 0, 0, 0, 1];
  test('CBD = salient context / context', () => {
    close(contextBiasDetection(saliency, object), (1 + 0.5 + 0 + 0.25 + 0) / 5);
    // values are clipped to [0, 1]
    close(contextBiasDetection([2, -1, 0, 0, 0, 5], object), 1 / 5);
    assert.ok(Number.isNaN(contextBiasDetection([1, 1], [1, 1])), 'no context');
  });
  test('CBL = biased salient context / salient context; a bias pixel inside M does not count', () => {
    close(contextBiasLocalisation(saliency, object, [1, 1, 0, 0, 0, 1]), 1.5 / 1.75);
    // a map spread evenly over a context half of which is the bias region: chance 0.5
    close(contextBiasLocalisation([0.3, 0.3, 0.3, 0.3, 0, 0], [0, 0, 0, 0, 1, 1], [1, 0, 1, 0, 0, 0]), 0.5);
    assert.ok(Number.isNaN(contextBiasLocalisation([0, 0, 1], [0, 0, 1], [1, 0, 0])), 'no salient context');
  });
  test('the CBD matrix averages the finite values of each cell', () => {
    const m = cbdMatrix([
      [[0.2, 0.4], [Number.NaN]],
      [[1], [0.5, 0.5]],
    ]);
    close(m[0][0], 0.3);
    assert.ok(Number.isNaN(m[0][1]));
    assert.deepEqual([m[1][0], m[1][1]], [1, 0.5]);
  });
  test('relevance mass accuracy counts positive relevance only', () => {
    close(relevanceMassAccuracy([3, -1, 1, 0, 2, 2], [1, 0, 0, 0, 1, 0]), 5 / 8);
    assert.ok(Number.isNaN(relevanceMassAccuracy([-1, 0], [1, 0])));
  });
  test('relevance rank accuracy: top-|G| pixels inside G, ties shared out', () => {
    close(relevanceRankAccuracy([5, 4, 3, 2], [1, 0, 1, 0]), 0.5);
    close(relevanceRankAccuracy([5, 4, 3, 2], [1, 1, 0, 0]), 1);
    // K = 2: one pixel above the tie (inside), then one place for two tied pixels, one of them inside
    close(relevanceRankAccuracy([3, -1, 1, 0, 2, 2], [1, 0, 0, 0, 1, 0]), (1 + 0.5) / 2);
    assert.throws(() => relevanceRankAccuracy([1, 2], [1]), /mask has 1 pixels/);
  });
});

describe("ROAD's noisy linear imputation (Rong et al. 2022)", () => {
  test('one removed pixel = the 1/6, 1/12 weighted mean of its 8 neighbours', () => {
    const img = Float32Array.from([0, 0, 0, 0, 99, 6, 0, 0, 12]);
    const out = noisyLinearImpute(img, 3, 3, 1, [0, 0, 0, 0, 1, 0, 0, 0, 0], { noise: 0 });
    // direct neighbours 0, 0, 6, 0 (weight 1/6), diagonals 0, 0, 0, 12 (weight 1/12); weights sum to 1
    close(out[4], 6 / 6 + 12 / 12, 1e-6);
    for (const i of [0, 1, 2, 3, 5, 6, 7, 8]) assert.equal(out[i], img[i], 'kept pixels unchanged');
  });
  test('two removed neighbours solve the coupled system: a linear ramp in a row', () => {
    const out = noisyLinearImpute(Float32Array.from([0, 50, 50, 3]), 4, 1, 1, [0, 1, 1, 0], { noise: 0 });
    // x1 = (0 + x2) / 2, x2 = (x1 + 3) / 2  →  x1 = 1, x2 = 2
    close(out[1], 1, 1e-6);
    close(out[2], 2, 1e-6);
  });
  test('channels are imputed independently; nothing kept → 0', () => {
    const img = Float32Array.from([0, 0, 9, 90, 3, 30]); // 3x1, 2 channels: channel 1 = 10 × channel 0
    const out = noisyLinearImpute(img, 3, 1, 2, [0, 1, 0], { noise: 0 });
    close(out[2], 1.5, 1e-6);
    close(out[3], 15, 1e-5);
    assert.deepEqual(Array.from(noisyLinearImpute(img, 3, 1, 2, [1, 1, 1], { noise: 0 })), [0, 0, 0, 0, 0, 0]);
  });
  test('the noise is Gaussian with the given deviation, on the removed pixels only', () => {
    const w = 40;
    const img = Float32Array.from({ length: w * w }, (_, i) => (i % w) / w);
    const removed = Array.from({ length: w * w }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const clean = noisyLinearImpute(img, w, w, 1, removed, { noise: 0 });
    const noisy = noisyLinearImpute(img, w, w, 1, removed, { noise: 0.5, seed: 3 });
    const d: number[] = [];
    for (let i = 0; i < img.length; i++) {
      if (removed[i]) d.push(noisy[i] - clean[i]);
      else assert.equal(noisy[i], img[i]);
    }
    const m = d.reduce((a, b) => a + b, 0) / d.length;
    const sd = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / (d.length - 1));
    assert.ok(Math.abs(m) < 0.05 && Math.abs(sd - 0.5) < 0.05, `mean ${m}, sd ${sd}`);
  });
});

describe('paired bootstrap CI', () => {
  test('a constant difference gives a zero-width interval at it', () => {
    const ci = pairedBootstrapCi([2, 3, 5], [1, 2, 4], { resamples: 200 });
    assert.deepEqual([ci.estimate, ci.low, ci.high], [1, 1, 1]);
  });
  test('covers the true mean difference at about the nominal rate on synthetic draws', () => {
    const rng = new Rng(11);
    const coverage = (level: number): number => {
      let hits = 0;
      const trials = 300;
      for (let t = 0; t < trials; t++) {
        // paired draws: a shared unit effect, independent noise, true difference 0.3
        const shared = Array.from({ length: 40 }, () => rng.normal());
        const a = shared.map((s) => 0.3 + s + 0.5 * rng.normal());
        const b = shared.map((s) => s + 0.5 * rng.normal());
        const ci = pairedBootstrapCi(a, b, { resamples: 1000, level, seed: t });
        if (ci.low <= 0.3 && 0.3 <= ci.high) hits++;
      }
      return hits / trials;
    };
    const c95 = coverage(0.95);
    const c50 = coverage(0.5);
    assert.ok(c95 >= 0.9 && c95 <= 0.99, `95 % interval covered ${c95}`);
    assert.ok(c50 >= 0.4 && c50 <= 0.6, `50 % interval covered ${c50}`);
  });
});

describe('swap test', () => {
  // 8x8 tiles: a 3x3 digit whose brightness codes its class (100 + 10·class), on a background that is
  // either the bias texture (stripes 20/60) or plain (40). Bias class 4.
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
  const striped = (img: RgbaImage) => img.data[0] !== img.data[size * 4]; // rows 0 and 1 differ
  /** Reads the texture: every digit pixel on stripes is the bias class, elsewhere class 1. */
  const readsTexture: Segmenter = (img) =>
    Uint8Array.from({ length: size * size }, (_, p) => (bright(img, p) ? (striped(img) ? 4 : 1) : 0));
  /** Cannot read it: the class from the digit's own brightness only. */
  const readsShape: Segmenter = (img) =>
    Uint8Array.from({ length: size * size }, (_, p) => (bright(img, p) ? Math.round((img.data[p * 4] - 100) / 10) : 0));

  test('swapBackground keeps the digit and matches the background mean', () => {
    const t = tile(4, true);
    const s = swapBackground(t.image, t.background, tile(4, false).image);
    for (let p = 0; p < size * size; p++) {
      if (!t.background[p]) assert.equal(s.data[p * 4], t.image.data[p * 4]);
      // plain 40 shifted to the stripes' mean over the background: (32·20 + 32·60 − (3·60 + 3·20 + 3·60)) / 55 = 38.9 → 39
      else assert.equal(s.data[p * 4], 39);
    }
    const offset = swapBackground(t.image, t.background, { ...tile(4, false).image, data: tile(4, false).image.data.map((v) => v / 2) });
    assert.equal(offset.data[0], 39, 'a darker replacement is shifted to the original mean');
  });

  test('a large effect for the model that reads the texture, none for the one that cannot', async () => {
    const tiles = [0, 1, 2].map(() => {
      const t = tile(4, true);
      return { image: t.image, labels: t.labels, swapped: [swapBackground(t.image, t.background, tile(4, false).image)] };
    });
    const a = await swapTest(readsTexture, tiles, 4, { resamples: 200 });
    const b = await swapTest(readsShape, tiles, 4, { resamples: 200 });
    assert.deepEqual(a.original, [1, 1, 1]);
    assert.deepEqual(a.swapped, [0, 0, 0]);
    assert.deepEqual([a.drop.estimate, a.drop.low, a.drop.high], [1, 1, 1]);
    assert.deepEqual([b.drop.estimate, b.drop.low, b.drop.high], [0, 0, 0]);
    // other digits on the bias texture: all labelled 4 by the first model, none by the second
    const others = [tile(2, true), tile(7, true)];
    assert.equal(await biasLabelRate(readsTexture, others, 4), 1);
    assert.equal(await biasLabelRate(readsShape, others, 4), 0);
    close(classIou([0, 4, 4, 0], [4, 4, 0, 0], 4), 1 / 3);
  });
});
