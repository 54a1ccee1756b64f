/**
 * KernelSHAP on superpixels against its definition: on a model additive in the segments it recovers each segment's
 * contribution (computed by hand), on a U-Net with every coalition evaluated it equals the Shapley values computed
 * from the definition (the model's own predict on every masked image), and efficiency Σφ = S(x) − S(baseline) holds
 * with sampled coalitions. SLIC and grid segments and the Shapley kernel by hand.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { INPUT_LAYER } from '../src/engine/contract.js';
import { createMethod, KernelShap } from '../src/methods/index.js';
import { binomial, shapleyKernel } from '../src/methods/shapley-regression.js';
import { gridSegments, slicSegments } from '../src/methods/superpixels.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { inputOf, pixelLinear, predictScores } from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) =>
  assert.ok(maxAbsDiff(got, want) <= tol * Math.max(1, maxAbs(want)), `${Array.from(got)} vs ${Array.from(want)}`);

describe('the pieces by hand', () => {
  test('Shapley kernel: M = 4 gives π(1) = π(3) = 1/4, π(2) = 1/8', () => {
    assert.equal(binomial(4, 2), 6);
    close([shapleyKernel(4, 1), shapleyKernel(4, 2), shapleyKernel(4, 3)], [0.25, 0.125, 0.25], 1e-12);
  });

  test('grid: 6x6 into 4 segments is 2x2 cells of 3x3 pixels; 4x8 into 8 is 2 rows of 4', () => {
    const g = gridSegments(6, 6, 4);
    assert.equal(g.count, 4);
    assert.deepEqual(Array.from(g.labels.slice(0, 6)), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(g.labels.slice(30, 36)), [2, 2, 2, 3, 3, 3]);
    const h = gridSegments(4, 8, 8);
    assert.equal(h.count, 8);
    assert.deepEqual(Array.from(h.labels.slice(0, 8)), [0, 0, 1, 1, 2, 2, 3, 3]);
  });

  test('SLIC: no segment straddles the edge between two flat colours; labels 0..n−1 all used', () => {
    const [H, W] = [12, 16];
    const values = new Float32Array(H * W * 3);
    for (let p = 0; p < H * W; p++) values.set(p % W < 7 ? [0.9, 0.1, 0.1] : [0.1, 0.1, 0.9], p * 3);
    const { labels, count } = slicSegments(values, H, W, 3, 8, 10, [0, 1]);
    assert.ok(count >= 4, `${count} segments`);
    const side = new Map<number, boolean>();
    for (let p = 0; p < H * W; p++) {
      const left = p % W < 7;
      if (side.has(labels[p])) assert.equal(side.get(labels[p]), left, `segment ${labels[p]} straddles the edge`);
      side.set(labels[p], left);
    }
    assert.deepEqual(
      [...side.keys()].sort((a, b) => a - b),
      Array.from({ length: count }, (_, i) => i),
    );
  });

  test('bad options are usage errors', () => {
    assert.throws(
      () => createMethod('kernel-shap', { segmentation: 'watershed' as 'grid' }),
      (e: unknown) => e instanceof SegGradCamError && e.code === 'usage',
    );
    assert.throws(() => createMethod('kernel-shap', { segments: 0 }), /segments must be a positive integer/);
  });
});

describe('a model additive in the segments: logits_c(p) = x(p)·K_c + b_c, black baseline', () => {
  const kernel = [
    [0.2, 1],
    [0.1, -1],
    [-0.3, 0.2],
  ];
  const bias = [0.1, 0.3];
  const size = 6;
  const image = randomImage(size, size, 4);
  const region = box(1, 2, 4, 4);
  const inM = (p: number) => p % size >= 1 && p % size <= 4 && Math.floor(p / size) >= 2 && Math.floor(p / size) <= 4;
  const contribution = (p: number) => [0, 1, 2].reduce((s, ch) => s + (image.data[p * 4 + ch] / 255) * kernel[ch][1], 0);
  /** φ_i = Σ_{p ∈ M ∩ segment i} x(p)·K_1: removing a segment removes exactly that. */
  const want = (labels: Int32Array, count: number) => {
    const phi = new Array<number>(count).fill(0);
    for (let p = 0; p < size * size; p++) if (inM(p)) phi[labels[p]] += contribution(p);
    return phi;
  };

  for (const [segments, samples, how] of [
    [4, undefined, 'every coalition'],
    [9, 40, '40 sampled coalitions of 510'],
  ] as const) {
    test(`grid of ${segments}, ${how}: φ = each segment's contribution, map = ReLU(φ) per pixel`, async () => {
      const explainer = new Explainer(new LayersModelAdapter(pixelLinear(size, kernel, bias)));
      const options = { segmentation: 'grid' as const, segments, samples, baseline: 'black' as const, batchSize: 7 };
      const e = await explainer.explain(image, { region, classId: 1, method: 'kernel-shap', methodOptions: options });
      const { labels, count } = gridSegments(size, size, segments);
      const phi = want(labels, count);
      assert.ok(phi.some((v) => v > 0.05) && phi.some((v) => v < -0.05), 'the check needs both signs');
      close(
        e.cam,
        Array.from(labels, (l) => Math.max(0, phi[l])),
      );
      const n = await explainer.explain(image, {
        region,
        classId: 1,
        method: 'kernel-shap',
        methodOptions: { ...options, negative: true },
      });
      close(
        n.cam,
        Array.from(labels, (l) => Math.max(0, -phi[l])),
      );
      explainer.dispose();
    });
  }
});

describe('a U-Net (not additive)', () => {
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  const image = randomImage(size, size, 5);
  const mask = new Uint8Array(size * size);
  for (let y = 4; y <= 12; y++) for (let x = 3; x <= 9; x++) mask[y * size + x] = 1;

  async function context() {
    const adapter = new LayersModelAdapter(model);
    const x = inputOf(image);
    const pass = await adapter.forward(x);
    const objective = regionObjective(adapter.output, 1, mask, 'logits');
    const layer = { name: INPUT_LAYER, type: 'Input', outputShape: [1, size, size, 3] };
    return { adapter, x, pass, objective, ctx: { adapter, pass, input: x, layer, objective, inputRange: [0, 1] as [number, number] } };
  }

  test('every coalition of a 2x2 grid: φ equals the Shapley values by the definition (predict on each masked image)', async () => {
    const { x, pass, objective, ctx } = await context();
    const labels = gridSegments(size, size, 4).labels;
    // f(S) through tfjs-layers' own predict, the other segments black (0).
    const f = (set: number) =>
      tf.tidy(() => {
        const keep = tf.tensor4d(
          Float32Array.from(labels, (l) => (set >> l) & 1),
          [1, size, size, 1],
        );
        return predictScores(model, tf.mul(x, keep) as tf.Tensor4D, objective.weights)[0];
      });
    const fact = (n: number): number => (n <= 1 ? 1 : n * fact(n - 1));
    const want = [0, 1, 2, 3].map((i) => {
      let phi = 0;
      for (let set = 0; set < 16; set++) {
        if ((set >> i) & 1) continue;
        const s = [0, 1, 2, 3].filter((j) => (set >> j) & 1).length;
        phi += ((fact(s) * fact(4 - s - 1)) / fact(4)) * (f(set | (1 << i)) - f(set));
      }
      return phi;
    });
    const shap = new KernelShap({ segmentation: 'grid', segments: 4, baseline: 'black' });
    const { phi } = await shap.attribution(ctx);
    close(phi, want, 1e-4);
    x.dispose();
    pass.dispose();
  });

  test('efficiency with sampled coalitions on SLIC segments: Σφ = S(x) − S(blurred x); no tensor left behind', async () => {
    const { x, pass, ctx } = await context();
    const before = tf.memory().numTensors;
    const shap = new KernelShap({ segments: 12, samples: 64, seed: 3 });
    const { phi, f0, f1, segments } = await shap.attribution(ctx);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.ok(segments.count > 4 && 2 ** segments.count - 2 > 64, `${segments.count} segments: the sampled path`);
    const sum = phi.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(f1 - f0) > 1e-2, 'the check needs S(x) ≠ S(b)');
    assert.ok(Math.abs(sum - (f1 - f0)) <= 1e-6 * Math.max(1, Math.abs(f1 - f0)), `${sum} vs ${f1 - f0}`);
    x.dispose();
    pass.dispose();
  });
});
