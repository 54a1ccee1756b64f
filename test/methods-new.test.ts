import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { INPUT_LAYER, type ForwardPass } from '../src/engine/contract.js';
import { objectiveScore } from '../src/engine/tfjs/objective.js';
import {
  createMethod,
  EigenGradCam,
  Fem,
  KpcaCam,
  SegEigenCam,
  riseMask,
  riseSaliency,
  randomMask,
  runMethod,
} from '../src/methods/index.js';
import { mulberry32 } from '../src/methods/random.js';
import { regionObjective } from '../src/region/objective.js';
import { box, whole } from '../src/region/region.js';
import { inputOf, layerOutput, linearHead, pixelLinear, predictScores } from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const relu = (v: number) => Math.max(0, v);
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) =>
  assert.ok(maxAbsDiff(got, want) <= tol * Math.max(1, maxAbs(want)), `${Array.from(got)} vs ${Array.from(want)}`);

describe('principal-component methods on tensors written down', () => {
  // A [1, 2, 2, 2] and G chosen so that |G| ⊙ A = (4,0), (4,0), (4,0), (0,0) and G ⊙ A = (−4,0), (4,0), (−4,0), (0,0).
  const A = () => tf.tensor4d([2, 1, 4, 3, 1, 5, 7, 2], [1, 2, 2, 2]);
  const G = () => tf.tensor4d([-2, 0, 1, 0, -4, 0, 0, 0], [1, 2, 2, 2]);

  test('Seg-Eigen-CAM: |G| ⊙ A, centred, first component, sign so that |max| ≥ |min|', () => {
    // Centred rows (1,0), (1,0), (1,0), (−3,0): component ±(1, 0), projection ±(1, 1, 1, −3); |−3| > 1 flips it:
    // (−1, −1, −1, 3), v = (−1, 0). Eigen-CAM's orientation (along the mean) would have kept (1, 1, 1, −3).
    const [a, g] = [A(), G()];
    const { cam, weights } = new SegEigenCam().compute(a, g);
    close(cam.dataSync(), [0, 0, 0, 3]);
    close(weights.dataSync(), [-1, 0]);
    const neg = new SegEigenCam({ negative: true }).compute(a, g);
    close(neg.cam.dataSync(), [1, 1, 1, 0]);
    tf.dispose([a, g, cam, weights, neg.cam, neg.weights]);
  });

  test('Eigen-Grad-CAM: G ⊙ A, centred, first component oriented along the mean row', () => {
    // Rows (−4,0), (4,0), (−4,0), (0,0), mean (−1, 0): centred (−3,0), (5,0), (−3,0), (1,0); v = (−1, 0) points
    // along the mean, projection (3, −5, 3, −1).
    const [a, g] = [A(), G()];
    const { cam, weights } = new EigenGradCam().compute(a, g);
    close(cam.dataSync(), [3, 0, 3, 0]);
    close(weights.dataSync(), [-1, 0]);
    tf.dispose([a, g, cam, weights]);
  });

  test('KPCA-CAM: two equal rows make the centred kernel rank one — projection ∝ (−1, −1, 2)·d/3', () => {
    // Rows a, a, b: the centred kernel is λuuᵀ with u ∝ (1, 1, −2) and λ = tr = 2d²/3, d² = k(a,a) + k(b,b) − 2k(a,b)
    // on the centred rows c_a = (a − b)/3, c_b = −2(a − b)/3; u·√λ = ±(1, 1, −2)d/3, the largest entry made positive.
    const act = tf.tensor4d([1, 2, 1, 2, 4, 0], [1, 1, 3, 2]);
    const ca = [-1, 2 / 3];
    const cb = [2, -4 / 3];
    const dot = (u: number[], v: number[]) => u[0] * v[0] + u[1] * v[1];
    const gamma = 1 / 2; // 1 / channels
    const kernels = {
      sigmoid: (u: number[], v: number[]) => Math.tanh(gamma * dot(u, v) + 1),
      linear: dot,
      rbf: (u: number[], v: number[]) => Math.exp(-gamma * ((u[0] - v[0]) ** 2 + (u[1] - v[1]) ** 2)),
    };
    for (const [name, k] of Object.entries(kernels)) {
      const d = Math.sqrt(k(ca, ca) + k(cb, cb) - 2 * k(ca, cb));
      const { cam } = new KpcaCam({ kernel: name as 'sigmoid' }).compute(act);
      close(cam.dataSync(), [0, 0, (2 * d) / 3], 1e-5);
      const neg = new KpcaCam({ kernel: name as 'sigmoid', negative: true }).compute(act);
      close(neg.cam.dataSync(), [d / 3, d / 3, 0], 1e-5);
      tf.dispose([cam, neg.cam]);
    }
    act.dispose();
  });

  test('FEM: w_k = the fraction of positions above μ_k + k·σ_k (population σ)', () => {
    // Channel 0: 0, 0, 0, 4 (μ 1, σ √3: with k = 1 the threshold 2.73 keeps one of four); channel 1: 1, 2, 3, 4
    // (μ 2.5, σ √1.25: threshold 3.62 keeps one). w = (¼, ¼); with k = 2 no position passes (4.46, 4.74).
    const act = tf.tensor4d([0, 1, 0, 2, 0, 3, 4, 4], [1, 2, 2, 2]);
    const one = new Fem({ sigmas: 1 }).compute(act);
    close(one.weights.dataSync(), [0.25, 0.25]);
    close(one.cam.dataSync(), [0.25, 0.5, 0.75, 2]);
    const two = new Fem().compute(act);
    close(two.weights.dataSync(), [0, 0]);
    tf.dispose([act, one.cam, one.weights, two.cam, two.weights]);
  });

  test('the KPCA kernel matrix is refused above its size limit, and an unknown kernel is a usage error', () => {
    const big = tf.zeros([1, 65, 64, 1]) as tf.Tensor4D;
    assert.throws(
      () => new KpcaCam().compute(big),
      (e: unknown) => e instanceof SegGradCamError && e.code === 'usage',
    );
    big.dispose();
    assert.throws(() => new KpcaCam({ kernel: 'cosine' as 'rbf' }), /unknown kernel 'cosine'/);
  });
});

describe('methods on a linear head: ∂S/∂A^k_uv = W_kc · M_uv', () => {
  // feat (6x6x4, ReLU) → 1x1 conv logits (3 classes), as in methods.test.ts; the logits are linear in A.
  const size = 6;
  const K = 4;
  const classes = 3;
  const c = 2; // the class whose map has both signs on this image
  const others = [0, 1];
  const model = linearHead(size, K, classes, 3);
  const image = randomImage(size, size, 8);
  const region = box(1, 1, 3, 4);
  const N = size * size;
  const M = new Float64Array(N);
  for (let y = 1; y <= 4; y++) for (let x = 1; x <= 3; x++) M[y * size + x] = 1;
  let A: Float32Array;
  let W: number[][]; // W[k][class]
  let bias: Float32Array;
  let logits: Float32Array;
  let explainer: Explainer;
  before(() => {
    const x = inputOf(image);
    A = layerOutput(model, 'feat', x);
    logits = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    x.dispose();
    const [kernel, b] = model.getLayer('logits').getWeights();
    const kd = kernel.dataSync();
    W = Array.from({ length: K }, (_, k) => Array.from({ length: classes }, (_, j) => kd[k * classes + j]));
    bias = b.dataSync() as Float32Array;
    explainer = new Explainer(new LayersModelAdapter(model));
  });
  const a = (p: number, k: number) => A[p * K + k];
  const positions = Array.from({ length: N }, (_, p) => p);
  const channelSum = (alpha: number[]) => positions.map((p) => alpha.reduce((s, al, k) => s + al * a(p, k), 0));
  const sumM = (k: number) => positions.reduce((s, p) => s + M[p] * a(p, k), 0);
  const areaM = M.reduce((s, v) => s + v, 0);

  test('negative Seg-Grad-CAM = ReLU(−Σ α A), the positive map ReLU(Σ α A), same α', async () => {
    const alpha = W.map((w) => (w[c] * areaM) / N);
    const signed = channelSum(alpha);
    assert.ok(signed.some((v) => v > 1e-3) && signed.some((v) => v < -1e-3), 'the check needs both signs');
    const pos = await explainer.explain(image, { region, classId: c, layer: 'feat', method: 'seg-grad-cam' });
    const neg = await explainer.explain(image, {
      region,
      classId: c,
      layer: 'feat',
      method: 'seg-grad-cam',
      methodOptions: { negative: true },
    });
    close(pos.cam, signed.map(relu));
    close(
      neg.cam,
      signed.map((v) => relu(-v)),
    );
    close(neg.weights ?? [], alpha);
  });

  test('Ablation-CAM: w_k = (S − S_k)/S with S_k = S − W_kc Σ_M A^k (zeroing channel k)', async () => {
    const S = positions.reduce((s, p) => s + M[p] * (W.reduce((t, w, k) => t + w[c] * a(p, k), 0) + bias[c]), 0);
    const w = W.map((wk, k) => (wk[c] * sumM(k)) / S);
    const e = await explainer.explain(image, {
      region,
      classId: c,
      layer: 'feat',
      method: 'ablation-cam',
      methodOptions: { batchSize: 3 },
    });
    close(e.weights ?? [], w, 1e-4);
    close(e.cam, channelSum(w).map(relu), 1e-4);
    assert.ok(Math.abs(e.scoreValue - S) < 1e-4 * Math.abs(S));
  });

  test('Finer-CAM: one comparison class, α = 1 → Seg-Grad-CAM of S = Σ_M (y^c − y^j), j the class with the closest mean logit', async () => {
    const meanLogit = (j: number) => positions.reduce((s, p) => s + M[p] * logits[p * classes + j], 0) / areaM;
    const j = [...others].sort((u, v) => Math.abs(meanLogit(u) - meanLogit(c)) - Math.abs(meanLogit(v) - meanLogit(c)))[0];
    const alpha = W.map((wk) => ((wk[c] - wk[j]) * areaM) / N);
    const e = await explainer.explain(image, {
      region,
      classId: c,
      layer: 'feat',
      method: 'finer-cam',
      methodOptions: { comparisons: 1 },
    });
    close(e.weights ?? [], alpha);
    close(e.cam, channelSum(alpha).map(relu));
    const S = positions.reduce((s, p) => s + M[p] * (logits[p * classes + c] - logits[p * classes + j]), 0);
    assert.ok(Math.abs(e.scoreValue - S) < 1e-4 * Math.max(1, Math.abs(S)));
  });

  test('Finer-CAM: two comparison classes weighted per pixel by their softmax probabilities', async () => {
    // ∂S/∂A^k_p = M_p (W_kc − α Σ_j q_pj W_kj), q_pj = p_j(p) / Σ_{j'∈J} p_j'(p) (held constant); α_k = its mean.
    const finerAlpha = 0.7;
    const alpha = W.map((wk) => {
      let s = 0;
      for (const p of positions) {
        if (!M[p]) continue;
        const [e0, e1] = others.map((j) => Math.exp(logits[p * classes + j]));
        s += wk[c] - finerAlpha * ((e0 * wk[others[0]] + e1 * wk[others[1]]) / (e0 + e1));
      }
      return s / N;
    });
    const e = await explainer.explain(image, {
      region,
      classId: c,
      layer: 'feat',
      method: 'finer-cam',
      methodOptions: { comparisons: 5, finerAlpha },
    });
    close(e.weights ?? [], alpha);
  });

  test('a contrastive objective S_c − S_c′ through Seg-Grad-CAM: α_k = (W_kc − W_kc′)|M|/N (c′ = 0)', async () => {
    const { contrastObjective } = await import('../src/region/contrast.js');
    const adapter = explainer.adapter;
    const x = inputOf(image);
    const pass = await adapter.forward(x);
    x.dispose();
    const objective = contrastObjective(regionObjective(adapter.output, c, Uint8Array.from(M), 'logits'), adapter.output, 0);
    const layer = explainer.resolveLayer('feat');
    const r = await runMethod(createMethod('seg-grad-cam'), {
      adapter,
      pass,
      input: pass.activation(INPUT_LAYER) as tf.Tensor4D,
      layer,
      objective,
      inputRange: [0, 1],
    });
    const alpha = W.map((wk) => ((wk[c] - wk[0]) * areaM) / N);
    close(r.weights?.dataSync() ?? [], alpha);
    const S = positions.reduce((s, p) => s + M[p] * (logits[p * classes + c] - logits[p * classes]), 0);
    assert.ok(Math.abs(r.score - S) < 1e-4 * Math.max(1, Math.abs(S)));
    tf.dispose([r.cam, r.weights ?? []]);
    pass.dispose();
  });
});

describe('contrastive objectives', () => {
  test('S_c − S_c′ equals the difference of the two region objectives, on logits and probabilities, C = 3 and C = 1', async () => {
    const { contrastObjective } = await import('../src/region/contrast.js');
    const mask = Uint8Array.from([0, 1, 1, 0, 1, 0]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const y3 = Array.from({ length: 18 }, (_, i) => Math.sin(i * 1.7) * 3);
    const y1 = Array.from({ length: 6 }, (_, i) => Math.cos(i * 2.3) * 2);
    const softmax = (p: number, j: number) => Math.exp(y3[p * 3 + j]) / [0, 1, 2].reduce((s, k) => s + Math.exp(y3[p * 3 + k]), 0);
    const cases = [
      { channels: 3, c: 0, other: 2, on: 'logits' as const, y: y3, want: (p: number) => y3[p * 3] - y3[p * 3 + 2] },
      { channels: 3, c: 0, other: 2, on: 'probability' as const, y: y3, want: (p: number) => softmax(p, 0) - softmax(p, 2) },
      { channels: 1, c: 1, other: 0, on: 'logits' as const, y: y1, want: (p: number) => 2 * y1[p] },
      { channels: 1, c: 0, other: 1, on: 'probability' as const, y: y1, want: (p: number) => 1 - sig(y1[p]) - sig(y1[p]) },
      { channels: 1, c: 1, other: 0, on: 'probability' as const, y: y1, want: (p: number) => sig(y1[p]) - (1 - sig(y1[p])) },
    ];
    for (const k of cases) {
      const output = { kind: 'map' as const, height: 2, width: 3, channels: k.channels, activation: 'none' as const };
      const o = contrastObjective(regionObjective(output, k.c, mask, k.on), output, k.other);
      const logits = tf.tensor(k.y, [1, 2, 3, k.channels]);
      const s = tf.tidy(() => objectiveScore(logits, o, output).dataSync()[0]);
      logits.dispose();
      const want = [0, 1, 2, 3, 4, 5].reduce((t, p) => t + (mask[p] ? k.want(p) : 0), 0);
      assert.ok(Math.abs(s - want) < 1e-5, `${JSON.stringify(k)}: ${s} vs ${want}`);
      assert.deepEqual(o.support, [
        [0, 2],
        [1, 3],
      ]);
    }
    const output = { kind: 'map' as const, height: 2, width: 3, channels: 3, activation: 'none' as const };
    assert.throws(() => contrastObjective(regionObjective(output, 1, mask, 'logits'), output, 1), /the explained class itself/);
    assert.throws(() => contrastObjective(regionObjective(output, 1, mask, 'logits'), output, 3), /out of range/);
  });
});

describe('Ablation-CAM and the replaced-activation scores on a U-Net (skip connections held)', () => {
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  const image = randomImage(size, size, 5);

  test('S with the cached A equals predict; (S(A + εE) − S(A − εE))/2ε equals ⟨∂S/∂A, E⟩', async () => {
    const adapter = new LayersModelAdapter(model);
    const x = inputOf(image);
    const pass = await adapter.forward(x);
    const mask = new Uint8Array(size * size);
    for (let y = 4; y <= 12; y++) for (let xx = 3; xx <= 9; xx++) mask[y * size + xx] = 1;
    const objective = regionObjective(adapter.output, 1, mask, 'logits');
    const replaced = (pass as Required<ForwardPass>).scoresWithActivations;
    assert.ok(replaced);
    const A = pass.activation('bottleneck') as tf.Tensor4D;
    const [s0] = await replaced('bottleneck', A, objective);
    const [want] = predictScores(model, x, objective.weights);
    assert.ok(Math.abs(s0 - want) < 1e-4 * Math.abs(want), `${s0} vs ${want}`);
    const { gradients, activations } = await pass.gradient('bottleneck', objective);
    const eps = 1e-3; // small enough that no ReLU after the layer changes state (1e-2 already does)
    const E = tf.randomNormal(A.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
    const both = tf.concat([tf.add(A, tf.mul(E, eps)), tf.sub(A, tf.mul(E, eps))]) as tf.Tensor4D;
    const [sp, sm] = await replaced('bottleneck', both, objective);
    const directional = tf.tidy(() => tf.sum(tf.mul(gradients, E)).dataSync()[0]);
    assert.ok(Math.abs(directional) > 1e-2);
    assert.ok(Math.abs((sp - sm) / (2 * eps) - directional) < 1e-2 * Math.abs(directional), `${(sp - sm) / (2 * eps)} vs ${directional}`);
    tf.dispose([x, E, both, gradients, activations]);
    pass.dispose();
  });

  test('an engine without the capability gets a typed refusal', async () => {
    const adapter = new LayersModelAdapter(model);
    const x = inputOf(image);
    const pass = await adapter.forward(x);
    const lean: ForwardPass = { ...pass, scoresWithActivations: undefined };
    const objective = regionObjective(adapter.output, 1, new Uint8Array(size * size).fill(1), 'logits');
    await assert.rejects(
      runMethod(createMethod('ablation-cam'), {
        adapter,
        pass: lean,
        input: x,
        layer: { name: 'bottleneck', type: 'Conv2D', outputShape: [1, 8, 8, 6] },
        objective,
        inputRange: [0, 1],
      }),
      (e: unknown) => e instanceof SegGradCamError && e.code === 'model' && /ablation-cam re-runs the model/.test(e.message),
    );
    x.dispose();
    pass.dispose();
  });
});

describe('perturbation methods against their definitions', () => {
  // logits_c(p) = Σ_ch x_ch(p) K[ch][c] + b_c: S = Σ_{p∈M} (x(p)·K_c + b_c), and occluding with black (0) removes x(p)·K_c.
  const kernel = [
    [0.2, 1],
    [0.1, -1],
    [-0.3, 0.2],
  ];
  const bias = [0.1, 0.3];
  const contribution = (image: { data: Uint8ClampedArray }, p: number) =>
    [0, 1, 2].reduce((s, ch) => s + (image.data[p * 4 + ch] / 255) * kernel[ch][1], 0);

  for (const [window, stride] of [
    [2, 2],
    [3, 2],
  ] as const) {
    test(`occlusion (window ${window}, stride ${stride}): a pixel's attribution is the mean drop of the windows covering it`, async () => {
      const size = 6;
      const explainer = new Explainer(new LayersModelAdapter(pixelLinear(size, kernel, bias)));
      const image = randomImage(size, size, 4);
      const region = box(1, 2, 4, 4);
      const inM = (p: number) => p % size >= 1 && p % size <= 4 && Math.floor(p / size) >= 2 && Math.floor(p / size) <= 4;
      // Windows by hand: starts 0, 2, 4 (window 2) or 0, 2 and the edge start 3 (window 3).
      const starts = window === 2 ? [0, 2, 4] : [0, 2, 3];
      const sum = new Float64Array(size * size);
      const count = new Float64Array(size * size);
      for (const y0 of starts)
        for (const x0 of starts) {
          let drop = 0;
          for (let y = y0; y < y0 + window; y++)
            for (let x = x0; x < x0 + window; x++) if (inM(y * size + x)) drop += contribution(image, y * size + x);
          for (let y = y0; y < y0 + window; y++)
            for (let x = x0; x < x0 + window; x++) {
              sum[y * size + x] += drop;
              count[y * size + x]++;
            }
        }
      const signed = Array.from(sum, (s, p) => s / count[p]);
      assert.ok(signed.some((v) => v > 0.05) && signed.some((v) => v < -0.05), 'the check needs both signs');
      const options = { window, stride, batchSize: 4 };
      const e = await explainer.explain(image, { region, classId: 1, method: 'occlusion', methodOptions: options });
      assert.deepEqual([e.camHeight, e.camWidth], [size, size]);
      close(e.cam, signed.map(relu), 1e-5);
      const n = await explainer.explain(image, { region, classId: 1, method: 'occlusion', methodOptions: { ...options, negative: true } });
      close(
        n.cam,
        signed.map((v) => relu(-v)),
        1e-5,
      );
      explainer.dispose();
    });
  }

  test('RISE over every binary mask of a 2x2 image = its expectation w·x_q + ½ Σ_{r≠q} w·x_r + Σ_M b (p = ½)', async () => {
    const size = 2;
    const adapter = new LayersModelAdapter(pixelLinear(size, kernel, bias));
    const image = randomImage(size, size, 6);
    const x = inputOf(image);
    const masks = Array.from({ length: 16 }, (_, m) => Float32Array.from([0, 1, 2, 3], (p) => (m >> p) & 1));
    const objective = regionObjective(adapter.output, 1, new Uint8Array(4).fill(1), 'logits');
    const baseline = tf.zerosLike(x);
    const sal = await riseSaliency(adapter, x, baseline, masks, objective, 0.5, 5);
    const wx = [0, 1, 2, 3].map((p) => contribution(image, p));
    const total = wx.reduce((s, v) => s + v, 0);
    close(
      sal,
      wx.map((v) => v + 0.5 * (total - v) + 4 * bias[1]),
      1e-5,
    );
    tf.dispose([x, baseline]);
  });

  test('RISE masks: a grid upsampled to (s+1) cells with half-pixel centres, cropped at the shift (by hand)', () => {
    // Grid [[1, 0], [0, 1]] on a 2x2 image: cells of 1 pixel, upsampled to 3x3: rows/cols sample the grid at
    // −1/6 (clamped to 0), ½ and 7/6 (clamped to 1). Upsampled: [[1, .5, 0], [.5, .5, .5], [0, .5, 1]].
    const cells = Float32Array.from([1, 0, 0, 1]);
    close(riseMask(cells, [2, 2], 2, 2, 0, 0), [1, 0.5, 0.5, 0.5]);
    close(riseMask(cells, [2, 2], 2, 2, 1, 1), [0.5, 0.5, 0.5, 1]);
    close(riseMask(cells, [2, 2], 2, 2, 0, 1), [0.5, 0, 0.5, 0.5]);
    // Against tf.image.resizeBilinear (half-pixel centres) on a random 3x4 grid, 10x9 image.
    const random = mulberry32(3);
    const grid = Float32Array.from({ length: 12 }, () => (random() < 0.5 ? 1 : 0));
    const [H, W] = [10, 9];
    const up = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(grid, [1, 3, 4, 1]), [4 * 4, 5 * 3], false, true).dataSync());
    const mask = riseMask(grid, [3, 4], H, W, 2, 1);
    const want = Array.from({ length: H * W }, (_, i) => up[(Math.floor(i / W) + 2) * 15 + (i % W) + 1]);
    close(mask, want, 1e-6);
  });

  test('RISE masks have mean p; the method equals the definition on its own seeded masks', async () => {
    const random = mulberry32(11);
    let mean = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) mean += randomMask(8, 8, [4, 4], 0.3, random).reduce((s, v) => s + v, 0) / 64 / n;
    // A mask's pixel mean has σ ≤ 0.46/4 (16 independent cells); over 2000 masks the standard error is < 0.003.
    assert.ok(Math.abs(mean - 0.3) < 0.012, `mean ${mean}`);
    const size = 8;
    const adapter = new LayersModelAdapter(pixelLinear(size, kernel, bias));
    const explainer = new Explainer(adapter);
    const image = randomImage(size, size, 2);
    const options = { samples: 40, maskResolution: 4, keepProbability: 0.3, seed: 5, batchSize: 7 };
    const e = await explainer.explain(image, { region: box(2, 2, 5, 6), classId: 1, method: 'rise', methodOptions: options });
    const r = mulberry32(5);
    const masks = Array.from({ length: 40 }, () => randomMask(size, size, [4, 4], 0.3, r));
    const x = inputOf(image);
    const baseline = tf.zerosLike(x);
    const mask = new Uint8Array(64);
    for (let y = 2; y <= 6; y++) for (let xx = 2; xx <= 5; xx++) mask[y * size + xx] = 1;
    const sal = await riseSaliency(adapter, x, baseline, masks, regionObjective(adapter.output, 1, mask, 'logits'), 0.3);
    close(e.cam, Array.from(sal, relu), 1e-5);
    tf.dispose([x, baseline]);
    explainer.dispose();
  });
});

describe('Score-CAM, the pytorch-grad-cam variant', () => {
  // At the 8x8 bottleneck of a 16x16 U-Net: masks upsampled with aligned corners (by hand here), x_k = x ⊙ H_k,
  // α = softmax_k S(x_k) over every channel.
  const size = 16;
  const model = tinyUnet(size, 3, 11);
  const image = randomImage(size, size, 5);

  test('α = softmax over all channels of S(x ⊙ H_k), H_k = min–max of A^k upsampled with aligned corners', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const region = box(3, 4, 9, 12);
    const e = await explainer.explain(image, {
      region,
      classId: 1,
      layer: 'bottleneck',
      score: 'probability',
      method: 'score-cam',
      methodOptions: { variant: 'pytorch-grad-cam', batchSize: 4 },
    });
    const x = inputOf(image);
    const A = layerOutput(model, 'bottleneck', x);
    const [h, K] = [8, 6];
    const xd = x.dataSync();
    const objective = regionObjective(explainer.adapter.output, 1, e.regionMask, 'probability');
    const probs = (t: tf.Tensor4D) =>
      tf.tidy(() => {
        const y = tf.softmax(model.predict(t) as tf.Tensor);
        return tf.sum(tf.mul(y, tf.tensor(objective.weights, y.shape))).dataSync()[0];
      });
    // Aligned corners: output i samples the input at i·(h − 1)/(size − 1).
    const at = (i: number) => {
      const s = (i * (h - 1)) / (size - 1);
      const lo = Math.floor(s);
      return { lo, hi: Math.min(lo + 1, h - 1), t: s - lo };
    };
    const scores = Array.from({ length: K }, (_, k) => {
      const up = new Float64Array(size * size);
      for (let i = 0; i < size; i++)
        for (let j = 0; j < size; j++) {
          const [u, v] = [at(i), at(j)];
          const g = (r: number, c: number) => A[(r * h + c) * K + k];
          up[i * size + j] =
            (g(u.lo, v.lo) * (1 - v.t) + g(u.lo, v.hi) * v.t) * (1 - u.t) + (g(u.hi, v.lo) * (1 - v.t) + g(u.hi, v.hi) * v.t) * u.t;
        }
      const lo = Math.min(...up);
      const hi = Math.max(...up);
      const masked = Float32Array.from(xd, (val, i) => val * ((up[Math.floor(i / 3)] - lo) / (hi - lo + 1e-8)));
      const xk = tf.tensor4d(masked, [1, size, size, 3]);
      const s = probs(xk);
      xk.dispose();
      return s;
    });
    const top = Math.max(...scores);
    const total = scores.reduce((s, v) => s + Math.exp(v - top), 0);
    const alpha = scores.map((s) => Math.exp(s - top) / total);
    assert.ok(Math.max(...alpha) < 0.99, 'the check needs a softmax that is not one-hot');
    close(e.weights ?? [], alpha, 1e-4);
    const cam = Array.from({ length: h * h }, (_, p) => relu(alpha.reduce((s, al, k) => s + al * A[p * K + k], 0)));
    close(e.cam, cam, 1e-4);
    x.dispose();
    explainer.dispose();
  });
});

describe('normalisation of the final heatmap', () => {
  test("'max' divides by the maximum; 'minmax' maps [min, max] to [0, 1]; a constant map is empty under minmax", async () => {
    const { normalizeInPlace, parseNormalization } = await import('../src/postprocess/heatmap.js');
    close(normalizeInPlace(Float32Array.from([1, 2, 4])).heatmap, [0.25, 0.5, 1]);
    const mm = normalizeInPlace(Float32Array.from([1, 2, 4]), 'minmax');
    close(mm.heatmap, [0, 1 / 3, 1]);
    assert.equal(mm.max, 4);
    assert.equal(mm.empty, false);
    // Negative and non-finite values count as 0 first (maps are after ReLU).
    close(normalizeInPlace(Float32Array.from([-1, Number.NaN, 2, 3]), 'minmax').heatmap, [0, 0, 2 / 3, 1]);
    const flat = normalizeInPlace(Float32Array.from([2, 2, 2]), 'minmax');
    assert.deepEqual(Array.from(flat.heatmap), [0, 0, 0]);
    assert.equal(flat.empty, true);
    assert.equal(parseNormalization('minmax'), 'minmax');
    assert.throws(
      () => parseNormalization('sum'),
      (e: unknown) => e instanceof SegGradCamError && /expected max or minmax/.test(e.message),
    );
  });
});

describe('options of the new methods', () => {
  test('a method without a negative map refuses the option; every new method is registered', () => {
    assert.throws(() => createMethod('saliency', { negative: true }), /saliency has no negative map/);
    for (const name of ['seg-eigen-cam', 'eigen-grad-cam', 'kpca-cam', 'fem', 'ablation-cam', 'finer-cam', 'occlusion', 'rise'])
      assert.equal(createMethod(name).name, name);
    assert.throws(() => createMethod('score-cam', { variant: 'torch' as 'increase' }), /unknown score-cam variant/);
    assert.throws(() => createMethod('rise', { keepProbability: 0 }), /keepProbability/);
  });

  test('every new method on a U-Net through the Explainer leaves no tensor behind', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 2)));
    const image = randomImage(16, 16, 3);
    await explainer.predict(image);
    const small = { samples: 3, batchSize: 2, maskResolution: 4 };
    for (const method of ['seg-eigen-cam', 'eigen-grad-cam', 'kpca-cam', 'fem', 'ablation-cam', 'finer-cam', 'occlusion', 'rise']) {
      for (const negative of method === 'kpca-cam' || method === 'fem' || method === 'rise' ? [false] : [false, true]) {
        const before = tf.memory().numTensors;
        const e = await explainer.explain(image, {
          region: whole(),
          classId: 1,
          layer: 'enc1',
          method,
          methodOptions: { ...small, negative },
        });
        assert.ok(e.heatmap.every(Number.isFinite), method);
        assert.equal(tf.memory().numTensors, before, `${method} negative=${negative}`);
      }
    }
    explainer.dispose();
  });
});
