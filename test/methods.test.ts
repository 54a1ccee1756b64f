import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { EigenCam, methodNames } from '../src/methods/index.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { regionObjective } from '../src/region/objective.js';
import { box, pixel, whole } from '../src/region/region.js';
import {
  inputOf,
  layerOutput,
  linearHead,
  normalCdf,
  pearson,
  pixelLinear,
  predictScores,
  setWeights,
  greyImage,
  thresholdModel,
} from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const relu = (v: number) => Math.max(0, v);

describe('CAM family on a linear head (∂S/∂A^k_uv = W_kc · M_uv, written down)', () => {
  // feat (6x6x4, ReLU) → 1x1 conv logits. M = a box, class c. Nothing below runs our executor:
  // A comes from a tfjs-layers sub-model, the gradient from the kernel.
  const size = 6;
  const K = 4;
  const c = 1;
  const model = linearHead(size, K, 2, 3);
  const image = randomImage(size, size, 8);
  const region = box(1, 1, 3, 4);
  const M = new Float64Array(size * size);
  for (let y = 1; y <= 4; y++) for (let x = 1; x <= 3; x++) M[y * size + x] = 1;
  const N = size * size;
  let A: Float32Array;
  let W: number[];
  let explainer: Explainer;

  before(() => {
    const x = inputOf(image);
    A = layerOutput(model, 'feat', x);
    x.dispose();
    const kernel = model.getLayer('logits').getWeights()[0].dataSync(); // [1,1,K,2]
    W = Array.from({ length: K }, (_, k) => kernel[k * 2 + c]);
    explainer = new Explainer(new LayersModelAdapter(model));
  });

  const a = (p: number, k: number) => A[p * K + k];
  const g = (p: number, k: number) => W[k] * M[p];
  const positions = Array.from({ length: N }, (_, p) => p);
  const sumOver = (f: (p: number) => number) => positions.reduce((s, p) => s + f(p), 0);
  const channelCam = (alpha: number[]) => positions.map((p) => relu(alpha.reduce((s, al, k) => s + al * a(p, k), 0)));
  const sumA = (k: number) => sumOver((p) => a(p, k));
  const areaM = M.reduce((s, v) => s + v, 0);

  const expected: Record<string, () => { cam: number[]; weights: number[] | null }> = {
    // α_k = mean_uv g (= W_kc |M| / N).
    'seg-grad-cam': () => {
      const alpha = W.map((_, k) => sumOver((p) => g(p, k)) / N);
      return { cam: channelCam(alpha), weights: alpha };
    },
    // ReLU(Σ_k g ⊙ A) (= M_uv · ReLU(Σ_k W_kc A^k_uv)).
    'hires-cam': () => ({ cam: positions.map((p) => relu(W.reduce((s, _, k) => s + g(p, k) * a(p, k), 0))), weights: null }),
    // ReLU(Σ_k ReLU(g) ⊙ A).
    'layer-cam': () => ({ cam: positions.map((p) => relu(W.reduce((s, _, k) => s + relu(g(p, k)) * a(p, k), 0))), weights: null }),
    // α_k = Σ_uv A g / Σ_uv A (= W_kc Σ_M A^k / Σ A^k).
    'xgrad-cam': () => {
      const alpha = W.map((_, k) => sumOver((p) => a(p, k) * g(p, k)) / (sumA(k) + 1e-7));
      return { cam: channelCam(alpha), weights: alpha };
    },
    // g = W_kc on M: a = W²/(2W² + ΣA·W³) = 1/(2 + ΣA^k·W_kc) there, so α_k = |M| ReLU(W_kc) / (2 + ΣA^k W_kc).
    'grad-cam++': () => {
      const alpha = W.map((w, k) => (w === 0 ? 0 : (areaM * relu(w)) / (2 + sumA(k) * w)));
      return { cam: channelCam(alpha), weights: alpha };
    },
  };

  for (const name of Object.keys(expected)) {
    test(`${name} equals its closed form`, async () => {
      const e = await explainer.explain(image, { region, classId: c, layer: 'feat', method: name });
      const want = expected[name]();
      assert.deepEqual(Array.from(e.regionMask), Array.from(M));
      const scale = maxAbs(want.cam);
      assert.ok(scale > 1e-3, 'the check needs a non-zero map');
      assert.ok(maxAbsDiff(e.cam, want.cam) < 1e-5 * scale, `cam ${Array.from(e.cam)} vs ${want.cam}`);
      if (want.weights) {
        assert.ok(e.weights);
        assert.ok(maxAbsDiff(e.weights, want.weights) < 1e-5 * maxAbs(want.weights), `α ${Array.from(e.weights)} vs ${want.weights}`);
      } else assert.equal(e.weights, null);
    });
  }
});

describe('Eigen-CAM', () => {
  test('projects on the first principal component, oriented along the mean activation (hand-computed)', () => {
    // Positions (2 channels): (0,0), (2,2), (1,2), (1,0); mean (1,1); centred (−1,−1), (1,1), (0,1), (0,−1).
    // XᵀX = [[2,2],[2,4]]: top eigenvalue 3+√5, eigenvector (1, φ)/√(1+φ²), φ = (1+√5)/2;
    // it points along the mean (1,1), so no flip. Projections: −(1+φ)/n, (1+φ)/n, φ/n, −φ/n.
    const A = tf.tensor4d([0, 0, 2, 2, 1, 2, 1, 0], [1, 2, 2, 2]);
    const { cam, weights } = new EigenCam().compute(A);
    const phi = (1 + Math.sqrt(5)) / 2;
    const n = Math.sqrt(1 + phi * phi);
    assert.ok(maxAbsDiff(weights.dataSync(), [1 / n, phi / n]) < 1e-5);
    assert.ok(maxAbsDiff(cam.dataSync(), [0, (1 + phi) / n, phi / n, 0]) < 1e-5);
    tf.dispose([A, cam, weights]);
  });

  test('the sign follows the mean activation when the data is mirrored', () => {
    // Same spread, but large values in channel 0 only at one position: component ≈ (1, 0), mean > 0.
    const A = tf.tensor4d([5, 1, 0, 1, 0, 1, 0, 1], [1, 2, 2, 2]);
    const { cam, weights } = new EigenCam().compute(A);
    assert.ok(maxAbsDiff(weights.dataSync(), [1, 0]) < 1e-6);
    // Centred channel 0: 3.75, −1.25, −1.25, −1.25.
    assert.ok(maxAbsDiff(cam.dataSync(), [3.75, 0, 0, 0]) < 1e-5);
    tf.dispose([A, cam, weights]);
  });
});

describe('Score-CAM against its definition', () => {
  // At enc1 (16x16, the input's size) the upsampling is the identity, so the masks are
  // (A^k − min) / (max − min) and x_k = mask ⊙ x (black baseline = 0).
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  const image = randomImage(size, size, 5);
  const region = box(3, 4, 9, 12);

  function definition(weights: Float32Array, channels: number[]): { alpha: number[]; cam: number[] } {
    const x = inputOf(image);
    const A = layerOutput(model, 'enc1', x);
    const K = 4;
    const xd = x.dataSync();
    const alpha = new Array<number>(K).fill(0);
    const zero = tf.zerosLike(x);
    const sb = predictScores(model, zero, weights)[0];
    for (const k of channels) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let p = 0; p < size * size; p++) {
        lo = Math.min(lo, A[p * K + k]);
        hi = Math.max(hi, A[p * K + k]);
      }
      const masked = new Float32Array(xd.length);
      for (let p = 0; p < size * size; p++)
        for (let ch = 0; ch < 3; ch++) masked[p * 3 + ch] = ((A[p * K + k] - lo) / (hi - lo + 1e-8)) * xd[p * 3 + ch];
      const xk = tf.tensor4d(masked, [1, size, size, 3]);
      alpha[k] = predictScores(model, xk, weights)[0] - sb;
      xk.dispose();
    }
    tf.dispose([x, zero]);
    const cam = Array.from({ length: size * size }, (_, p) => relu(alpha.reduce((s, al, k) => s + al * A[p * K + k], 0)));
    return { alpha, cam };
  }

  test('all channels: α_k = S(x ⊙ H_k) − S(0), map ReLU(Σ α_k A^k)', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const e = await explainer.explain(image, { region, classId: 1, layer: 'enc1', method: 'score-cam', methodOptions: { batchSize: 3 } });
    const objective = regionObjective(explainer.adapter.output, 1, e.regionMask, 'logits');
    const want = definition(objective.weights, [0, 1, 2, 3]);
    assert.ok(e.weights);
    assert.ok(maxAbs(want.alpha) > 1e-3);
    assert.ok(maxAbsDiff(e.weights, want.alpha) < 1e-4 * maxAbs(want.alpha), `α ${Array.from(e.weights)} vs ${want.alpha}`);
    assert.ok(maxAbsDiff(e.cam, want.cam) < 1e-4 * Math.max(maxAbs(want.cam), 1e-3));
  });

  test('maxChannels keeps the channels with the largest mean activation', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const e = await explainer.explain(image, { region, classId: 1, layer: 'enc1', method: 'score-cam', methodOptions: { maxChannels: 2 } });
    const x = inputOf(image);
    const A = layerOutput(model, 'enc1', x);
    x.dispose();
    const means = [0, 1, 2, 3].map((k) => Array.from({ length: size * size }, (_, p) => A[p * 4 + k]).reduce((s, v) => s + v, 0));
    const top = [0, 1, 2, 3].sort((i, j) => means[j] - means[i]).slice(0, 2);
    const objective = regionObjective(explainer.adapter.output, 1, e.regionMask, 'logits');
    const want = definition(objective.weights, top);
    assert.ok(e.weights);
    assert.deepEqual([0, 1, 2, 3].filter((k) => e.weights?.[k] !== 0).sort(), [...top].sort());
    assert.ok(maxAbsDiff(e.weights, want.alpha) < 1e-4 * maxAbs(want.alpha));
  });
});

describe('input attributions on models whose gradients are written down', () => {
  test('saliency = max_c |W_c| on M and 0 elsewhere; gradient × input = ReLU(Σ_c x_c W_c) on M', async () => {
    // logits_1(p) = 0.5 r − 2 g + b·1 + 0.3: ∂S/∂x(p) = (0.5, −2, 1) for p ∈ M.
    const model = pixelLinear(
      6,
      [
        [0.2, 0.5],
        [0.1, -2],
        [-0.3, 1],
      ],
      [0.1, 0.3],
    );
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(6, 6, 4);
    const region = box(1, 2, 4, 3);
    const inM = (p: number) => p % 6 >= 1 && p % 6 <= 4 && Math.floor(p / 6) >= 2 && Math.floor(p / 6) <= 3;
    const sal = await explainer.explain(image, { region, classId: 1, method: 'saliency' });
    assert.equal(sal.layer.name, 'input');
    assert.deepEqual([sal.camHeight, sal.camWidth], [6, 6]);
    assert.ok(
      maxAbsDiff(
        sal.cam,
        Array.from({ length: 36 }, (_, p) => (inM(p) ? 2 : 0)),
      ) < 1e-6,
    );
    const gxi = await explainer.explain(image, { region, classId: 1, method: 'gradient-x-input' });
    const px = (p: number, ch: number) => image.data[p * 4 + ch] / 255;
    const want = Array.from({ length: 36 }, (_, p) => (inM(p) ? relu(0.5 * px(p, 0) - 2 * px(p, 1) + px(p, 2)) : 0));
    assert.ok(maxAbs(want) > 0.05);
    assert.ok(maxAbsDiff(gxi.cam, want) < 1e-6);
    explainer.dispose();
  });

  // y = ReLU(x − ½) per pixel, M = whole image, class 1: ∂S/∂x_p = 1[x_p > ½].
  const values = [0, 40, 80, 100, 115, 120, 125, 128, 130, 135, 140, 150, 170, 200, 230, 255];
  const grey = greyImage(4, 4, values);

  test('SmoothGrad = P(x + ε > ½) = Φ((x − ½)/σ) (within sampling error); seeded', async () => {
    const explainer = new Explainer(new LayersModelAdapter(thresholdModel(4, 0.5)));
    const options = { samples: 800, sigma: 0.1, seed: 7, batchSize: 200 };
    const e = await explainer.explain(grey, { region: whole(), classId: 1, method: 'smoothgrad', methodOptions: options });
    const want = values.map((v) => normalCdf((v / 255 - 0.5) / 0.1));
    // 800 samples: standard error ≤ 0.5/√800 ≈ 0.018; allow 3.5 of them.
    assert.ok(maxAbsDiff(e.cam, want) < 0.063, `${Array.from(e.cam).map((v) => v.toFixed(3))} vs ${want.map((v) => v.toFixed(3))}`);
    const again = await explainer.explain(grey, { region: whole(), classId: 1, method: 'smoothgrad', methodOptions: options });
    assert.deepEqual(Array.from(again.cam), Array.from(e.cam));
    const other = await explainer.explain(grey, {
      region: whole(),
      classId: 1,
      method: 'smoothgrad',
      methodOptions: { ...options, seed: 8 },
    });
    assert.ok(maxAbsDiff(other.cam, e.cam) > 1e-3, 'another seed gives other noise');
    explainer.dispose();
  });

  test('Integrated Gradients from black = x − ½ where x > ½, else 0 (hand integral)', async () => {
    // IG_p = x_p ∫₀¹ 1[t x_p > ½] dt = x_p − ½; the trapezoidal rule errs by at most x_p/(2·steps).
    const explainer = new Explainer(new LayersModelAdapter(thresholdModel(4, 0.5)));
    const e = await explainer.explain(grey, {
      region: whole(),
      classId: 1,
      method: 'integrated-gradients',
      methodOptions: { steps: 200, batchSize: 201 },
    });
    const want = values.map((v) => relu(v / 255 - 0.5));
    assert.ok(maxAbsDiff(e.cam, want) < 0.0026, `${Array.from(e.cam)} vs ${want}`);
    explainer.dispose();
  });
});

describe('Integrated Gradients completeness: Σ attributions = S(x) − S(baseline)', () => {
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  const adapter = new LayersModelAdapter(model);
  const image = randomImage(size, size, 5);
  for (const baseline of ['black', 'blurred', 0.5] as const) {
    test(`baseline ${baseline}`, async () => {
      const { integratedGradients } = await import('../src/methods/integrated-gradients.js');
      const { baselineFor } = await import('../src/methods/baseline.js');
      const x = inputOf(image);
      const mask = new Uint8Array(size * size);
      for (let y = 4; y <= 12; y++) for (let xx = 3; xx <= 9; xx++) mask[y * size + xx] = 1;
      const objective = regionObjective(adapter.output, 1, mask, 'logits');
      const b = baselineFor(x, baseline, [0, 1]);
      const attr = await integratedGradients(adapter, x, b, objective, { steps: 256, batchSize: 64 });
      const total = tf.tidy(() => tf.sum(attr).dataSync()[0]);
      // S by tfjs-layers' own predict.
      const [sx, sb] = predictScores(model, tf.concat([x, b]) as tf.Tensor4D, objective.weights);
      const gap = sx - sb;
      assert.ok(Math.abs(gap) > 0.05, `the check needs S(x) ≠ S(b): ${gap}`);
      assert.ok(Math.abs(total - gap) < 0.01 * Math.abs(gap), `Σ IG = ${total}, S(x) − S(b) = ${gap}`);
      tf.dispose([x, b, attr]);
    });
  }
});

describe('Grid Saliency', () => {
  test('finds the context pixel: M reads only the pixel to its left', async () => {
    // A 3x3 conv whose only non-zero tap reads x(i, j−1): S(M = pixel (4,3)) = Σ_c x_c(3,3)/3.
    // With a black baseline the best mask keeps (3,3) and nothing else.
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = tf.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', name: 'left' });
    const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
    const kernel = new Array(27).fill(0);
    for (let ch = 0; ch < 3; ch++) kernel[(1 * 3 + 0) * 3 + ch] = 1 / 3; // [di=1, dj=0, ch, 0]
    setWeights(conv, { data: kernel, shape: [3, 3, 3, 1] }, { data: [0], shape: [1] });
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(8, 8, 12);
    image.data.set([200, 180, 220], (3 * 8 + 3) * 4);
    const e = await explainer.explain(image, {
      region: pixel(4, 3),
      classId: 1,
      method: 'grid-saliency',
      methodOptions: { maskResolution: 8, iterations: 150 },
    });
    assert.deepEqual([e.camHeight, e.camWidth], [8, 8]);
    const keep = 3 * 8 + 3;
    assert.ok(e.cam[keep] > 0.9, `mask at the context pixel: ${e.cam[keep]}`);
    const rest = Array.from(e.cam).filter((_, i) => i !== keep);
    assert.ok(Math.max(...rest) < 0.05, `mask elsewhere: max ${Math.max(...rest)}`);
    explainer.dispose();
  });

  test('keepRegion keeps M itself: the mask only chooses context (M reads itself and its left neighbour)', async () => {
    // S(M = pixel (4,3)) = Σ_c (x_c(3,3) + x_c(3,4))/3. Without keepRegion the best mask keeps both
    // pixels; with M kept, only the context pixel (3,3) — M's own cell is free, so λ drives it to 0.
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = tf.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', name: 'self-left' });
    const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
    const kernel = new Array(27).fill(0);
    for (let ch = 0; ch < 3; ch++) {
      kernel[(1 * 3 + 0) * 3 + ch] = 1 / 3; // [di=1, dj=0]: the left neighbour
      kernel[(1 * 3 + 1) * 3 + ch] = 1 / 3; // [di=1, dj=1]: the pixel itself
    }
    setWeights(conv, { data: kernel, shape: [3, 3, 3, 1] }, { data: [0], shape: [1] });
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(8, 8, 12);
    image.data.set([200, 180, 220], (3 * 8 + 3) * 4);
    image.data.set([190, 210, 170], (3 * 8 + 4) * 4);
    const run = (keepRegion: boolean) =>
      explainer.explain(image, {
        region: pixel(4, 3),
        classId: 1,
        method: 'grid-saliency',
        methodOptions: { maskResolution: 8, iterations: 150, keepRegion },
      });
    const [context, self] = [3 * 8 + 3, 3 * 8 + 4];
    const plain = await run(false);
    assert.ok(plain.cam[context] > 0.9 && plain.cam[self] > 0.9, `M masked too: ${plain.cam[context]}, ${plain.cam[self]}`);
    const kept = await run(true);
    assert.ok(kept.cam[context] > 0.9, `M kept, context pixel: ${kept.cam[context]}`);
    assert.ok(kept.cam[self] < 0.05, `M kept, M's own cell: ${kept.cam[self]}`);
    explainer.dispose();
  });
});

describe('LRP', () => {
  /** x (2 channels, 1 pixel) → 1x1 conv ReLU (3) → 1x1 conv (2 classes). */
  function twoLayer(): tf.LayersModel {
    const input = tf.input({ shape: [1, 1, 2] });
    const h = tf.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'relu', name: 'h' });
    const y = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'y' });
    const model = tf.model({ inputs: input, outputs: y.apply(h.apply(input)) as tf.SymbolicTensor });
    // W1[i][j] (input i, hidden j) and W2[j][k].
    setWeights(h, { data: [1, -1, 0.5, 2, 1, -1], shape: [1, 1, 2, 3] }, { data: [0.1, 0, 0.2], shape: [3] });
    setWeights(y, { data: [0.5, 1, -1, 1, 2, 1], shape: [1, 1, 3, 2] }, { data: [0.3, -0.2], shape: [2] });
    return model;
  }

  test('hand-computed two-layer example, ε- and αβ-rule', async () => {
    const { lrpRelevance } = await import('../src/methods/lrp.js');
    const adapter = new LayersModelAdapter(twoLayer());
    const x = tf.tensor4d([1, 2], [1, 1, 1, 2]);
    const objective = { weights: Float32Array.from([1, 0]), on: 'logits' as const, offset: 0 };
    // z = (1+4+0.1, −1+2, 0.5−2+0.2) = (5.1, 1, −1.3); h = (5.1, 1, 0); y_0 = 2.55 − 1 + 0 + 0.3 = 1.85 = R_y.
    // ε → 0: R_h = h_j W2_j0 (y_0/y_0) = (2.55, −1, 0).
    //   from h_0: x_i W1_i0 / 5.1 · 2.55 = (1, 4)/5.1 · 2.55 = (0.5, 2); from h_1: (−1, 2)/1 · (−1) = (1, −2). R_x = (1.5, 0).
    const eps = lrpRelevance(adapter, x, objective, { rule: 'epsilon', epsilon: 1e-9 });
    assert.ok(maxAbsDiff(eps.dataSync(), [1.5, 0]) < 1e-5, `${eps.dataSync()}`);
    // α = 2, β = 1, biases left out. Layer y: contributions (2.55, −1, 0), Σ⁺ = 2.55, Σ⁻ = −1:
    //   R_h = (2·1.85, −1·1.85, 0) = (3.7, −1.85, 0).
    // h_0: contributions (1, 4), all positive: 2·(1/5, 4/5)·3.7 = (1.48, 5.92).
    // h_1: contributions (−1, 2): 2·(0, 2/2)·(−1.85) − 1·((−1)/(−1), 0)·(−1.85) = (1.85, −3.7).
    // R_x = (3.33, 2.22).
    const ab = lrpRelevance(adapter, x, objective, { rule: 'alpha-beta', alpha: 2, beta: 1 });
    assert.ok(maxAbsDiff(ab.dataSync(), [3.33, 2.22]) < 1e-5, `${ab.dataSync()}`);
    tf.dispose([x, eps, ab]);
  });

  /** The bias-free version of a model (zero every bias). */
  function biasFree(model: tf.LayersModel): tf.LayersModel {
    for (const layer of model.layers) {
      const ws = layer.getWeights();
      if (ws.length === 2) {
        const zero = tf.zerosLike(ws[1]);
        layer.setWeights([ws[0], zero]);
        zero.dispose();
      }
    }
    return model;
  }

  function residualNet(): tf.LayersModel {
    const input = tf.input({ shape: [8, 8, 3] });
    const a = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
      })
      .apply(input) as tf.SymbolicTensor;
    const b = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }),
      })
      .apply(a) as tf.SymbolicTensor;
    const s = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
    const p = tf.layers.averagePooling2d({ poolSize: 2 }).apply(s) as tf.SymbolicTensor;
    const u = tf.layers.upSampling2d({ size: [2, 2] }).apply(p) as tf.SymbolicTensor;
    const out = tf.layers
      .conv2d({ filters: 3, kernelSize: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) })
      .apply(u) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  }

  for (const [name, make, size] of [
    ['U-Net (conv, max-pool, transposed conv, concatenate)', () => tinyUnet(16, 3, 11), 16],
    ['residual net (add, average pooling, upsampling)', residualNet, 8],
  ] as const) {
    test(`ε-rule conservation on a bias-free ReLU ${name}: Σ R = S, and R = x ⊙ ∂S/∂x`, async () => {
      const { lrpRelevance } = await import('../src/methods/lrp.js');
      const model = biasFree(make());
      const adapter = new LayersModelAdapter(model);
      const x = inputOf(randomImage(size, size, 9));
      const mask = new Uint8Array(size * size);
      for (let i = 0; i < mask.length; i += 3) mask[i] = 1;
      const objective = regionObjective(adapter.output, 2, mask, 'logits');
      const R = lrpRelevance(adapter, x, objective, { rule: 'epsilon', epsilon: 1e-9 });
      const S = predictScores(model, x, objective.weights)[0];
      const total = tf.tidy(() => tf.sum(R).dataSync()[0]);
      assert.ok(Math.abs(S) > 0.05);
      assert.ok(Math.abs(total - S) < 1e-3 * Math.abs(S), `Σ R = ${total}, S = ${S}`);
      // A bias-free ReLU net is positively homogeneous: LRP-0 equals gradient × input. The gradient
      // here is tf.grad through tfjs-layers' apply, not our code.
      const w = tf.tensor(objective.weights, [1, size, size, 3]);
      const gx = tf.tidy(() => tf.mul(x, tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(model.apply(xx) as tf.Tensor, w)))(x)));
      assert.ok(maxAbsDiff(R.dataSync(), gx.dataSync()) < 1e-4 * maxAbs(gx.dataSync()));
      tf.dispose([x, R, w, gx]);
    });
  }

  test('BatchNormalization after a conv is folded into it (same relevance as the hand-folded model)', async () => {
    const { lrpRelevance } = await import('../src/methods/lrp.js');
    const build = (withBn: boolean) => {
      const input = tf.input({ shape: [6, 6, 3] });
      let h = tf.layers
        .conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) })
        .apply(input) as tf.SymbolicTensor;
      if (withBn) h = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
      const out = tf.layers
        .conv2d({ filters: 2, kernelSize: 1, name: 'out', kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) })
        .apply(h) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: out });
    };
    const withBn = build(true);
    const folded = build(false);
    const gamma = [1.5, 0.5, -0.8, 2];
    const beta = [0.1, -0.2, 0.3, 0];
    const mean = [0.2, -0.1, 0.05, 0.3];
    const variance = [0.5, 2, 1, 0.25];
    const conv = withBn.getLayer('conv').getWeights();
    const bias0 = [0.05, -0.05, 0.1, 0];
    setWeights(withBn.getLayer('conv'), { data: Array.from(conv[0].dataSync()), shape: conv[0].shape }, { data: bias0, shape: [4] });
    setWeights(withBn.getLayer('bn'), ...[gamma, beta, mean, variance].map((d) => ({ data: d, shape: [4] })));
    // By hand: W' = W γ/√(σ²+ε), b' = (b − μ) γ/√(σ²+ε) + β (Keras' ε = 1e-3).
    const s = gamma.map((g, k) => g / Math.sqrt(variance[k] + 1e-3));
    const k0 = conv[0].dataSync();
    setWeights(
      folded.getLayer('conv'),
      { data: Array.from(k0, (v, i) => v * s[i % 4]), shape: conv[0].shape },
      { data: bias0.map((b, k) => (b - mean[k]) * s[k] + beta[k]), shape: [4] },
    );
    const out = withBn.getLayer('out').getWeights();
    folded.getLayer('out').setWeights(out);
    const x = inputOf(randomImage(6, 6, 2));
    const objective = regionObjective(new LayersModelAdapter(withBn).output, 1, new Uint8Array(36).fill(1), 'logits');
    for (const rule of ['epsilon', 'alpha-beta'] as const) {
      const a = lrpRelevance(new LayersModelAdapter(withBn), x, objective, { rule });
      const b = lrpRelevance(new LayersModelAdapter(folded), x, objective, { rule });
      assert.ok(maxAbs(b.dataSync()) > 1e-3);
      assert.ok(maxAbsDiff(a.dataSync(), b.dataSync()) < 1e-4 * maxAbs(b.dataSync()), rule);
      tf.dispose([a, b]);
    }
    x.dispose();
  });

  test('an unsupported layer is a typed error that names it', async () => {
    const { UnsupportedLayerError } = await import('../src/methods/lrp.js');
    const input = tf.input({ shape: [6, 6, 3] });
    const h = tf.layers.separableConv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'sep' }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(h) as tf.SymbolicTensor;
    const explainer = new Explainer(new LayersModelAdapter(tf.model({ inputs: input, outputs: out })));
    await assert.rejects(explainer.explain(randomImage(6, 6), { region: whole(), classId: 1, method: 'lrp' }), (err: unknown) => {
      assert.ok(err instanceof UnsupportedLayerError);
      assert.equal(err.layerName, 'sep');
      assert.equal(err.layerType, 'SeparableConv2D');
      assert.match(err.message, /'sep' \(SeparableConv2D\)/);
      return true;
    });
    const input2 = tf.input({ shape: [6, 6, 3] });
    const t = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'tanh', name: 'squash' }).apply(input2) as tf.SymbolicTensor;
    const out2 = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(t) as tf.SymbolicTensor;
    const explainer2 = new Explainer(new LayersModelAdapter(tf.model({ inputs: input2, outputs: out2 })));
    await assert.rejects(
      explainer2.explain(randomImage(6, 6), { region: whole(), classId: 1, method: 'lrp' }),
      /'squash' \(Conv2D with activation tanh\)/,
    );
  });
});

describe('CAM (Zhou et al.) on global average pooling + a linear head', () => {
  test('equals Grad-CAM up to scale N: weights W_kc = N α_k, same heatmap', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const features = tf.layers
      .conv2d({
        filters: 5,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'features',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }),
      })
      .apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
    const head = tf.layers.dense({
      units: 4,
      activation: 'softmax',
      name: 'head',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }),
    });
    const model = tf.model({ inputs: input, outputs: head.apply(pooled) as tf.SymbolicTensor });
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(8, 8, 6);
    const W = head.getWeights()[0].arraySync() as number[][];
    let nonEmpty = 0;
    for (let c = 0; c < 4; c++) {
      const cam = await explainer.explain(image, { region: whole(), classId: c, layer: 'features', method: 'cam' });
      const grad = await explainer.explain(image, { region: whole(), classId: c, layer: 'features', method: 'seg-grad-cam' });
      assert.ok(cam.weights && grad.weights);
      assert.ok(
        maxAbsDiff(
          cam.weights,
          W.map((row) => row[c]),
        ) < 1e-6,
        'CAM weights are the dense kernel column',
      );
      assert.ok(
        maxAbsDiff(
          cam.weights,
          Array.from(grad.weights, (v) => v * 64),
        ) < 1e-5,
      );
      assert.ok(maxAbsDiff(cam.heatmap, grad.heatmap) < 1e-5);
      assert.ok(
        maxAbsDiff(
          cam.cam,
          Array.from(grad.cam, (v) => v * 64),
        ) <
          1e-5 * Math.max(1, maxAbs(cam.cam)),
      );
      if (!cam.empty) nonEmpty++;
    }
    assert.ok(nonEmpty > 0);
    await assert.rejects(
      new Explainer(new LayersModelAdapter(tinyUnet(8, 3, 1))).explain(randomImage(8, 8), { region: whole(), classId: 1, method: 'cam' }),
      /GlobalAveragePooling2D/,
    );
  });
});

describe('truncation to the pixels M depends on', () => {
  // Two 3x3 convs without activation: M = one pixel depends on exactly the 5x5 window around it.
  function twoConvs(size: number): tf.LayersModel {
    const input = tf.input({ shape: [size, size, 3] });
    const c1 = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        name: 'c1',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 8 }),
        biasInitializer: tf.initializers.constant({ value: 0.3 }),
      })
      .apply(input) as tf.SymbolicTensor;
    const c2 = tf.layers
      .conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c2', kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }) })
      .apply(c1) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: c2 });
  }

  for (const [imageSize, px, window] of [
    [12, 6, (x: number) => x >= 4 && x <= 8],
    // A 24x24 image on the 12x12 model: pixel x lies in input cell ⌊x/2⌋; cells 4..8 are pixels 8..17.
    [24, 12, (x: number) => x >= 8 && x <= 17],
  ] as const) {
    test(`no heatmap mass outside the receptive field (image ${imageSize}x${imageSize})`, async () => {
      const explainer = new Explainer(new LayersModelAdapter(twoConvs(12)));
      const image = randomImage(imageSize, imageSize, 4);
      const request = { region: pixel(px, px), classId: 1, layer: 'c1' };
      const plain = await explainer.explain(image, request);
      const cut = await explainer.explain(image, { ...request, truncate: true });
      assert.ok(cut.receptiveField);
      let outside = 0;
      let plainOutside = 0;
      let inside = 0;
      for (let y = 0; y < imageSize; y++)
        for (let x = 0; x < imageSize; x++) {
          const i = y * imageSize + x;
          const expected = window(x) && window(y);
          assert.equal(cut.receptiveField[i], expected ? 1 : 0, `field at (${x}, ${y})`);
          if (expected) inside += cut.heatmap[i];
          else {
            outside += cut.heatmap[i];
            plainOutside += plain.heatmap[i];
          }
        }
      assert.ok(plainOutside > 0, 'the untruncated heatmap has mass outside, so the check can fail');
      assert.equal(outside, 0);
      assert.ok(inside > 0);
      assert.ok(Math.abs(Math.max(...cut.heatmap) - 1) < 1e-6, 'rescaled to [0, 1]');
      explainer.dispose();
    });
  }
});

describe('sanity check: randomised weights', () => {
  test('randomising the weights changes the Seg-Grad-CAM heatmap; restoring them restores it', async () => {
    const model = tinyUnet(16, 3, 11);
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(16, 16, 5);
    const request = { region: box(3, 4, 9, 12), classId: 1, layer: 'enc1' };
    const original = await explainer.explain(image, request);
    const saved = model.layers.map((l) => l.getWeights().map((w) => w.clone()));
    // Cascading randomisation from the output down (Adebayo et al. 2018) to the end: every kernel re-drawn.
    model.layers.forEach((l, i) => {
      const ws = l.getWeights();
      if (ws.length === 0) return;
      const kernel = tf.randomNormal(ws[0].shape, 0, 0.5, 'float32', 100 + i);
      l.setWeights([kernel, ...ws.slice(1)]);
      kernel.dispose();
    });
    explainer.release();
    const randomised = await explainer.explain(image, request);
    assert.ok(!original.empty, 'original empty');
    assert.ok(!randomised.empty, 'randomised empty');
    const r = pearson(original.heatmap, randomised.heatmap);
    assert.ok(r < 0.5, `correlation with the randomised model's heatmap: ${r}`);
    model.layers.forEach((l, i) => l.setWeights(saved[i]));
    tf.dispose(saved.flat());
    explainer.release();
    const restored = await explainer.explain(image, request);
    assert.ok(maxAbsDiff(restored.heatmap, original.heatmap) < 1e-6);
    explainer.dispose();
  });
});

describe('options', () => {
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  // Even pixel values, so halving the brightness is exact in 8 bits.
  const image = randomImage(size, size, 5);
  for (let i = 0; i < image.data.length; i++) if ((i & 3) !== 3) image.data[i] &= 0xfe;

  test('augmentation = mean of the maps of the image, its mirror (un-mirrored) and its darkened copy', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const request = { region: box(3, 4, 9, 12), classId: 1, layer: 'enc1' };
    const e = await explainer.explain(image, { ...request, augment: { flip: true, brightness: [0.5] } });
    assert.equal(e.augmentations, 3);
    const mirror = { ...image, data: new Uint8ClampedArray(image.data.length) };
    const dark = { ...image, data: image.data.map((v, i) => ((i & 3) === 3 ? v : v / 2)) };
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        mirror.data.set(image.data.subarray((y * size + x) * 4, (y * size + x) * 4 + 4), (y * size + size - 1 - x) * 4);
    const a = await explainer.explain(image, request);
    const b = await explainer.explain(mirror, { ...request, region: box(size - 1 - 9, 4, size - 1 - 3, 12) });
    const c = await explainer.explain(dark, request);
    const want = Array.from({ length: size * size }, (_, i) => {
      const x = i % size;
      const y = Math.floor(i / size);
      return (a.cam[i] + b.cam[y * size + size - 1 - x] + c.cam[i]) / 3;
    });
    assert.ok(maxAbs(b.cam) > 0 && maxAbsDiff(a.cam, b.cam) > 1e-4, 'the mirrored map is not trivially the same');
    assert.ok(maxAbsDiff(e.cam, want) < 1e-5 * maxAbs(want));
    assert.equal(e.weights, null);
    explainer.release();
  });

  test('several layers: the mean of their [0, 1] heatmaps, rescaled', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const request = { region: box(3, 4, 9, 12), classId: 1 };
    const e = await explainer.explain(image, { ...request, layers: ['enc1', 'bottleneck', 'dec1'] });
    assert.deepEqual(
      e.layers?.map((l) => l.name),
      ['enc1', 'bottleneck', 'dec1'],
    );
    const parts: Float32Array[] = [];
    for (const layer of ['enc1', 'bottleneck', 'dec1']) parts.push((await explainer.explain(image, { ...request, layer })).heatmap);
    const mean = parts[0].map((_, i) => (parts[0][i] + parts[1][i] + parts[2][i]) / 3);
    const top = Math.max(...mean);
    assert.ok(
      maxAbsDiff(
        e.heatmap,
        mean.map((v) => v / top),
      ) < 1e-6,
    );
    explainer.release();
  });

  test('input-attribution methods report the input layer and refuse several layers', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const e = await explainer.explain(image, { region: whole(), classId: 1, method: 'saliency', layer: 'enc1' });
    assert.equal(e.layer.name, 'input');
    await assert.rejects(
      explainer.explain(image, { region: whole(), classId: 1, method: 'saliency', layers: ['enc1', 'dec1'] }),
      /attributes to the input/,
    );
    await assert.rejects(
      explainer.explain(image, { region: whole(), method: 'nope' }),
      /unknown method 'nope'; valid methods: seg-grad-cam/,
    );
    explainer.release();
  });
});

describe('batched scores and input gradients (LayersModel)', () => {
  test('agree with tfjs-layers predict and tf.grad per image', async () => {
    const model = tinyUnet(16, 3, 11);
    const adapter = new LayersModelAdapter(model);
    const xs = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const mask = new Uint8Array(256).fill(1);
    const objective = regionObjective(adapter.output, 0, mask, 'probability');
    const scores = await adapter.scores(xs, objective);
    const { gradients, scores: s2 } = await adapter.inputGradients(xs, objective);
    const w = tf.tensor(objective.weights, [1, 16, 16, 3]);
    for (let b = 0; b < 3; b++) {
      const x = xs.slice([b, 0, 0, 0], [1, -1, -1, -1]);
      const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(model.apply(t) as tf.Tensor, -1), w));
      const want = tf.tidy(() => f(x).dataSync()[0]);
      const g = tf.tidy(() => tf.grad(f)(x));
      const ours = tf.tidy(() => gradients.slice([b, 0, 0, 0], [1, -1, -1, -1]));
      assert.ok(Math.abs(scores[b] - want) < 1e-3 && Math.abs(s2[b] - want) < 1e-3);
      assert.ok(maxAbsDiff(ours.dataSync(), g.dataSync()) < 1e-5 * Math.max(1e-6, maxAbs(g.dataSync())));
      tf.dispose([x, g, ours]);
    }
    tf.dispose([xs, gradients, w]);
  });
});

describe('memory', () => {
  test('every method, and the options, leave tf.memory().numTensors unchanged', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 2)));
    const image = randomImage(16, 16, 3);
    await explainer.predict(image);
    const small = { samples: 3, steps: 3, iterations: 3, maxChannels: 3, batchSize: 2 };
    for (const method of methodNames()) {
      if (method === 'cam') continue; // needs a GAP classifier (tested above)
      for (const extra of [{}, { augment: true, truncate: true }]) {
        const before = tf.memory().numTensors;
        await explainer.explain(image, { region: pixel(5, 6), classId: 1, method, methodOptions: small, ...extra });
        assert.equal(tf.memory().numTensors, before, `${method} ${JSON.stringify(extra)}`);
      }
    }
    const before = tf.memory().numTensors;
    await explainer.explain(image, { region: whole(), classId: 2, layers: ['enc1', 'dec1'], score: 'probability' });
    await assert.rejects(explainer.explain(image, { region: whole(), classId: 2, method: 'lrp', score: 'probability' }), /logits/);
    assert.equal(tf.memory().numTensors, before);
    explainer.dispose();
  });
});
