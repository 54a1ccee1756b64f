// The sanity checks' similarity measures and ROAD's ranking agreement on tiny arrays whose
// answers are worked out by hand: SSIM (identical, a constant shift, one 3x3 window), HOG (a
// vertical edge, a 45° edge), Spearman of signed and absolute maps, Kendall's τ-b with ties.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kendallTau, kendallTauBootstrap } from '../src/eval/rank-agreement.js';
import { absScaled, hog, hogSimilarity, similarity, ssim } from '../src/eval/similarity.js';
import { sobel } from '../src/eval/protocol/controls.js';

const close = (a: number, b: number, tol = 1e-12, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);
const C1 = 0.01 ** 2;
const C2 = 0.03 ** 2;

describe('SSIM (Wang et al. 2004)', () => {
  test('identical maps give 1', () => {
    const a = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) ** 2);
    close(ssim(a, a, 10, 10), 1, 1e-12);
  });
  test('a constant shift: only the luminance term, (2μ(μ+c) + C1) / (μ² + (μ+c)² + C1)', () => {
    const a = new Float32Array(49).fill(0.25);
    const b = new Float32Array(49).fill(0.75);
    // σ = 0 in both: the contrast-structure term is C2 / C2 = 1
    close(ssim(a, b, 7, 7), (2 * 0.25 * 0.75 + C1) / (0.25 ** 2 + 0.75 ** 2 + C1), 1e-7);
    // a textured map shifted by c: σ_a = σ_b = σ_ab, so every window gives (2μ(μ+c) + C1) / (μ² + (μ+c)² + C1)
    const t = Float32Array.from([0, 1, 0, 1, 0, 1, 0, 1, 0]);
    const s = Float32Array.from(t, (v) => v + 0.5);
    const mu = 4 / 9;
    close(ssim(t, s, 3, 3, { window: 3 }), (2 * mu * (mu + 0.5) + C1) / (mu * mu + (mu + 0.5) ** 2 + C1), 1e-7);
  });
  test('one 3x3 window by hand, and the mean over the valid windows', () => {
    const a = [1, 0, 0, 0, 0, 0, 0, 0, 0];
    const b = [0, 0, 0, 0, 0, 0, 0, 0, 1];
    // μa = μb = 1/9, σa² = σb² = 1/9 − 1/81 = 8/81, σab = 0 − 1/81 = −1/81
    const mu = 1 / 9;
    const expected = ((2 * mu * mu + C1) * (2 * (-1 / 81) + C2)) / ((2 * mu * mu + C1) * (16 / 81 + C2));
    close(ssim(a, b, 3, 3, { window: 3 }), expected, 1e-7);
    // a 4x3 map has two 3x3 windows; a window larger than the map shrinks to it
    const a4 = [...[1, 0, 0, 0], ...[0, 0, 0, 0], ...[0, 0, 0, 0]];
    const b4 = [...[1, 0, 0, 0], ...[0, 0, 0, 0], ...[0, 0, 0, 1]];
    // window x0 = 0: identical (1); window x0 = 1: a is all 0 there, b has one 1
    const w2 = ((0 + C1) * (0 + C2)) / ((mu * mu + C1) * (8 / 81 + C2));
    close(ssim(a4, b4, 4, 3, { window: 3 }), (1 + w2) / 2, 1e-7);
    close(ssim(a, b, 3, 3, { window: 7 }), expected, 1e-7);
    assert.throws(() => ssim(a, b, 3, 3, { window: 4 }), /odd/);
    assert.throws(() => ssim(a, b.slice(1), 3, 3), /ssim/);
  });
});

describe('HOG (Dalal & Triggs 2005)', () => {
  test('a vertical edge votes into the 0° bin only; one block is normalised to 1', () => {
    // 16x16: 0 left of column 8, 1 from it. g_x = x[c+1] − x[c−1] = 1 at columns 7 and 8, g_y = 0.
    const m = Float32Array.from({ length: 256 }, (_, i) => (i % 16 >= 8 ? 1 : 0));
    const f = hog(m, 16, 16);
    // 2x2 cells → one block of 4 cells × 9 bins. Column 7 lies in the left cells, column 8 in the right
    // cells: each cell gets 8 rows × 1 = 8 in bin 0; the block vector (8, 0…, 8, 0…, 8, 0…, 8, 0…)/16.
    assert.equal(f.length, 36);
    for (let cell = 0; cell < 4; cell++)
      for (let b = 0; b < 9; b++) close(f[cell * 9 + b], b === 0 ? 8 / Math.sqrt(4 * 64) : 0, 1e-9, `cell ${cell} bin ${b}`);
  });
  test('a 45° gradient splits its vote 3/4 to the 40° bin and 1/4 to the 60° bin (a ramp, edges by hand)', () => {
    // m = (x + y)/30 on 16x16, one cell of 16 px, one block. Per pixel (g in units of 1/30):
    //  196 interior pixels: g = (2, 2), |g| = 2√2, θ = 45° → bin 2 (40°) 3/4, bin 3 (60°) 1/4;
    //  4 corners: g = (1, 1), |g| = √2, 45° as well;
    //  28 left/right edge pixels: g = (1, 2), |g| = √5, θ = atan(2) = 63.43° → bins 3 and 4;
    //  28 top/bottom edge pixels: g = (2, 1), |g| = √5, θ = atan(1/2) = 26.57° → bins 1 and 2.
    const m = Float32Array.from({ length: 256 }, (_, i) => ((i % 16) + Math.floor(i / 16)) / 30);
    const f = hog(m, 16, 16, { block: 1, cell: 16 });
    const steep = (Math.atan(2) * 180) / Math.PI / 20 - 3; // share of bin 4
    const flat = (Math.atan(0.5) * 180) / Math.PI / 20 - 1; // share of bin 2
    const h = new Array<number>(9).fill(0);
    const diag = 196 * 2 * Math.SQRT2 + 4 * Math.SQRT2;
    h[2] += 0.75 * diag + 28 * Math.sqrt(5) * flat;
    h[3] += 0.25 * diag + 28 * Math.sqrt(5) * (1 - steep);
    h[4] += 28 * Math.sqrt(5) * steep;
    h[1] += 28 * Math.sqrt(5) * (1 - flat);
    const norm = Math.hypot(...h);
    h.forEach((v, k) => close(f[k], v / norm, 1e-6, `bin ${k}`));
    // HOG is normalised per block: a map and its multiple have similarity 1
    close(
      hogSimilarity(
        m,
        Float32Array.from(m, (v) => 3 * v),
        16,
        16,
      ),
      1,
      1e-9,
    );
  });
  test('orientation is unsigned; a horizontal edge is orthogonal to a vertical one', () => {
    const v = Float32Array.from({ length: 256 }, (_, i) => (i % 16 >= 8 ? 1 : 0));
    const vFlip = Float32Array.from(v, (x) => 1 - x);
    const h = Float32Array.from({ length: 256 }, (_, i) => (Math.floor(i / 16) >= 8 ? 1 : 0));
    close(hogSimilarity(v, vFlip, 16, 16), 1, 1e-9, 'a dark-to-bright and a bright-to-dark edge');
    assert.ok(hogSimilarity(v, h, 16, 16) < 0, 'the 0° and 90° bins do not overlap');
    assert.throws(() => hog(v, 8, 32), /fewer than 2x2 cells/);
  });
});

describe('similarity of maps (Adebayo et al. 2018)', () => {
  test('signed vs absolute Spearman: a map and its negation', () => {
    const a = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.7) * (i % 5));
    const s = similarity(
      a,
      Float32Array.from(a, (v) => -v),
      16,
      16,
    );
    close(s.spearman, -1, 1e-12);
    close(s.absSpearman, 1, 1e-12);
    close(s.ssim, 1, 1e-12);
    close(s.hog, 1, 1e-9);
    assert.deepEqual(Array.from(absScaled([-2, 1, 0])), [1, 0.5, 0]);
    assert.deepEqual(Array.from(absScaled([0, 0])), [0, 0]);
  });
  test('HOG is NaN (not 0) where it does not fit the map', () => {
    const s = similarity([1, 2, 3, 4], [4, 3, 2, 1], 2, 2);
    close(s.spearman, -1, 1e-12);
    assert.ok(Number.isNaN(s.hog));
  });
  test('the Sobel control by hand: a vertical step gives |g_x| = 4 beside it', () => {
    const data = new Uint8ClampedArray(4 * 4 * 4);
    for (let p = 0; p < 16; p++) data.set(p % 4 >= 2 ? [255, 255, 255, 255] : [0, 0, 0, 255], p * 4);
    const s = sobel({ width: 4, height: 4, data });
    // columns 1 and 2 see 0 on the left and 1 on the right in all three rows: 1 + 2 + 1 = 4
    assert.deepEqual(Array.from(s), [0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0]);
  });
});

describe("Kendall's τ-b", () => {
  test('one discordant pair of six: (5 − 1) / 6', () => {
    close(kendallTau([1, 2, 3, 4], [1, 3, 2, 4]), 4 / 6);
    close(kendallTau([1, 2, 3], [3, 2, 1]), -1);
    close(kendallTau([1, 2, 3], [10, 20, 30]), 1);
  });
  test('ties: x = (1, 2, 2, 3), y = (1, 2, 3, 3): 4 concordant, one tie on each side → 4 / √(5·5)', () => {
    close(kendallTau([1, 2, 2, 3], [1, 2, 3, 3]), 0.8);
    assert.ok(Number.isNaN(kendallTau([1, 1, 1], [1, 2, 3])), 'a constant ranking has no order');
    assert.ok(Number.isNaN(kendallTau([1, Number.NaN], [1, 2])));
    assert.throws(() => kendallTau([1], [1, 2]), /lengths differ/);
  });
  test('the bootstrap over units: identical per-unit rankings give τ = 1 on every resample', () => {
    const a = [
      [1, 1.1, 0.9],
      [2, 2.2, 1.8],
      [3, 3.1, 2.7],
    ];
    const t = kendallTauBootstrap(a, a, { resamples: 200 });
    assert.deepEqual([t.estimate, t.low, t.high], [1, 1, 1]);
    const rev = kendallTauBootstrap(
      a,
      a.map((r) => r.map((v) => -v)),
      { resamples: 200 },
    );
    assert.deepEqual([rev.estimate, rev.low, rev.high], [-1, -1, -1]);
  });
});
