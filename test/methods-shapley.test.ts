/**
 * ShapleyCAM against values computed by hand: α_k = mean_uv (∂S/∂A − ½ H·A)^k_uv on models whose Hessian in A is known
 * in closed form (a quadratic head; a softmax over a linear head), the batch-norm second derivative against the same
 * model with the batch norm folded into the next convolution, and the typed refusal on an engine without H·A.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import type { ForwardPass } from '../src/engine/contract.js';
import { createMethod, runMethod } from '../src/methods/index.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { GraphBuilder, convAttrs, fusedAttrs } from './helpers/graph-builder.js';
import { inputOf, layerOutput, linearHead, setWeights } from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

const relu = (v: number) => Math.max(0, v);
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) =>
  assert.ok(maxAbsDiff(got, want) <= tol * Math.max(1, maxAbs(want)), `${Array.from(got)} vs ${Array.from(want)}`);

const size = 6;
const K = 3;
const classes = 2;
const N = size * size;
const region = box(1, 1, 3, 4);
const M = new Float64Array(N);
for (let y = 1; y <= 4; y++) for (let x = 1; x <= 3; x++) M[y * size + x] = 1;
const image = randomImage(size, size, 8);
const positions = Array.from({ length: N }, (_, p) => p);

/** feat (3x3 conv, ReLU) → [feat, feat ⊙ feat] → 1x1 conv: y_c = Σ_k U_kc A_k + V_kc A_k² + b_c. */
function quadraticHead(seed = 4): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3] });
  const feat = tf.layers
    .conv2d({
      filters: K,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotNormal({ seed }),
      biasInitializer: tf.initializers.constant({ value: 0.2 }),
      name: 'feat',
    })
    .apply(input) as tf.SymbolicTensor;
  const sq = tf.layers.multiply({ name: 'sq' }).apply([feat, feat]) as tf.SymbolicTensor;
  const both = tf.layers.concatenate({ name: 'both' }).apply([feat, sq]) as tf.SymbolicTensor;
  const logits = tf.layers
    .conv2d({ filters: classes, kernelSize: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }), name: 'logits' })
    .apply(both) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

describe('ShapleyCAM on a quadratic head: ∂S/∂A = M(U + 2VA), H·A = 2VAM, so α_k = (1/N) Σ_M (U_kc + V_kc A_k)', () => {
  const c = 1;
  const model = quadraticHead();
  let A: Float32Array;
  let U: number[][];
  let V: number[][];
  before(() => {
    const x = inputOf(image);
    A = layerOutput(model, 'feat', x);
    x.dispose();
    const kd = model.getLayer('logits').getWeights()[0].dataSync();
    U = Array.from({ length: K }, (_, k) => [0, 1].map((j) => kd[k * classes + j]));
    V = Array.from({ length: K }, (_, k) => [0, 1].map((j) => kd[(K + k) * classes + j]));
  });
  const a = (p: number, k: number) => A[p * K + k];
  const alpha = () => U.map((_, k) => positions.reduce((s, p) => s + M[p] * (U[k][c] + V[k][c] * a(p, k)), 0) / N);
  const gradCamAlpha = () => U.map((_, k) => positions.reduce((s, p) => s + M[p] * (U[k][c] + 2 * V[k][c] * a(p, k)), 0) / N);
  const signedMap = (w: number[]) => positions.map((p) => w.reduce((s, wk, k) => s + wk * a(p, k), 0));

  test('LayersModel: weights and map by hand; the map is not Seg-Grad-CAM’s', async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const want = alpha();
    assert.ok(maxAbsDiff(want, gradCamAlpha()) > 1e-2 * maxAbs(want), 'the second-order term must matter here');
    const e = await explainer.explain(image, { region, classId: c, layer: 'feat', method: 'shapley-cam' });
    close(e.weights ?? [], want);
    const signed = signedMap(want);
    close(e.cam, signed.map(relu));
    const n = await explainer.explain(image, {
      region,
      classId: c,
      layer: 'feat',
      method: 'shapley-cam',
      methodOptions: { negative: true },
    });
    close(
      n.cam,
      signed.map((v) => relu(-v)),
    );
    const g = await explainer.explain(image, { region, classId: c, layer: 'feat', method: 'seg-grad-cam' });
    close(g.weights ?? [], gradCamAlpha());
    explainer.dispose();
  });

  test('GraphModel of the same weights (Mul, ConcatV2): the same hand-computed weights', async () => {
    const g = new GraphBuilder();
    const fresh = quadraticHead();
    const [fk, fb] = fresh.getLayer('feat').getWeights();
    const [lk, lb] = fresh.getLayer('logits').getWeights();
    g.input('x', [1, size, size, 3]);
    g.op('feat', '_FusedConv2D', ['x', g.weight('fk', fk), g.weight('fb', fb)], {
      ...convAttrs(1, 'SAME'),
      ...fusedAttrs('BiasAdd', 'Relu'),
    });
    g.op('sq', 'Mul', ['feat', 'feat']);
    g.op('both', 'ConcatV2', ['feat', 'sq', g.constant('axis', [3], [], 'int32')], { N: { i: '2' }, Tidx: { type: 'DT_INT32' } });
    g.op('logits', '_FusedConv2D', ['both', g.weight('lk', lk), g.weight('lb', lb)], {
      ...convAttrs(1, 'VALID'),
      ...fusedAttrs('BiasAdd'),
    });
    const explainer = new Explainer(await g.load());
    await explainer.explain(image, { region, classId: c, layer: 'feat', method: 'shapley-cam' }); // caches the forward pass
    const before = tf.memory().numTensors;
    const e = await explainer.explain(image, { region, classId: c, layer: 'feat', method: 'shapley-cam' });
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    close(e.weights ?? [], alpha());
    explainer.dispose();
  });
});

describe('ShapleyCAM through a softmax: H_A·A = W H_z (z − b) per pixel, H_z the Hessian of p_c in the logits', () => {
  // S = Σ_{p∈M} p_c(z_p), z_p = Wᵀ A_p + b: ∂S/∂A_p = W ∇p_c, ∇_j p_c = p_c(δ_cj − p_j);
  // ∂²p_c/∂z_j∂z_l = p_c[(δ_cj − p_j)(δ_cl − p_l) − p_j(δ_jl − p_l)], and H·A at p = W H_z Wᵀ A_p = W H_z (z_p − b).
  const C = 3;
  const c = 2;
  const model = linearHead(size, 4, C, 3);

  test('LayersModel, score on probabilities: weights by hand in float64', async () => {
    const x = inputOf(image);
    const A = layerOutput(model, 'feat', x);
    x.dispose();
    const [kernel, bias] = model.getLayer('logits').getWeights();
    const kd = kernel.dataSync();
    const b = bias.dataSync();
    const Kf = 4;
    const W = (k: number, j: number) => kd[k * C + j];
    const alpha = new Float64Array(Kf);
    const grad = new Float64Array(Kf);
    for (const p of positions) {
      if (!M[p]) continue;
      const z = Array.from(
        { length: C },
        (_, j) => b[j] + Array.from({ length: Kf }, (_, k) => W(k, j) * A[p * Kf + k]).reduce((s, v) => s + v, 0),
      );
      const top = Math.max(...z);
      const ez = z.map((v) => Math.exp(v - top));
      const total = ez.reduce((s, v) => s + v, 0);
      const q = ez.map((v) => v / total);
      const d = (i: number, j: number) => (i === j ? 1 : 0);
      const gz = q.map((_, j) => q[c] * (d(c, j) - q[j]));
      const hz = (j: number, l: number) => q[c] * ((d(c, j) - q[j]) * (d(c, l) - q[l]) - q[j] * (d(j, l) - q[l]));
      const zb = z.map((v, j) => v - b[j]);
      for (let k = 0; k < Kf; k++) {
        let g = 0;
        let h = 0;
        for (let j = 0; j < C; j++) {
          g += W(k, j) * gz[j];
          for (let l = 0; l < C; l++) h += W(k, j) * hz(j, l) * zb[l];
        }
        grad[k] += g / N;
        alpha[k] += (g - 0.5 * h) / N;
      }
    }
    assert.ok(maxAbsDiff(alpha, grad) > 1e-2 * maxAbs(alpha), `the Hessian term must matter: ${Array.from(alpha)} vs ${Array.from(grad)}`);
    const explainer = new Explainer(new LayersModelAdapter(model));
    const request = { region, classId: c, layer: 'feat', method: 'shapley-cam', score: 'probability' as const };
    await explainer.explain(image, request); // caches the forward pass
    const before = tf.memory().numTensors;
    const e = await explainer.explain(image, request);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    close(e.weights ?? [], alpha, 1e-4);
    explainer.dispose();
  });
});

describe('second derivatives through batch normalisation', () => {
  test('feat → BatchNorm → 1x1 conv equals the same net with the batch norm folded into the conv (softmax score)', async () => {
    const C = 3;
    const input = tf.input({ shape: [size, size, 3] });
    const featLayer = tf.layers.conv2d({
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'feat',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }),
    });
    const bnLayer = tf.layers.batchNormalization({ name: 'bn' });
    const headLayer = tf.layers.conv2d({
      filters: C,
      kernelSize: 1,
      name: 'logits',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 10 }),
    });
    const feat = featLayer.apply(input) as tf.SymbolicTensor;
    const withBn = tf.model({ inputs: input, outputs: headLayer.apply(bnLayer.apply(feat)) as tf.SymbolicTensor });
    const gamma = [1.5, -0.7, 0.9, 2.1];
    const beta = [0.1, -0.3, 0.2, 0.05];
    const mean = [0.3, 0.1, -0.2, 0.4];
    const variance = [0.5, 2.0, 1.2, 0.8];
    const eps = 1e-3;
    setWeights(
      bnLayer,
      { data: gamma, shape: [4] },
      { data: beta, shape: [4] },
      { data: mean, shape: [4] },
      { data: variance, shape: [4] },
    );
    // Folded: BN(a)_k = s_k a_k + t_k, s_k = γ_k / √(var_k + ε), t_k = β_k − s_k μ_k; the head W'_kj = s_k W_kj, b'_j = b_j + Σ_k t_k W_kj.
    const [hk, hb] = headLayer.getWeights();
    const kd = hk.dataSync();
    const bd = hb.dataSync();
    const s = gamma.map((g, k) => g / Math.sqrt(variance[k] + eps));
    const t = beta.map((be, k) => be - s[k] * mean[k]);
    const input2 = tf.input({ shape: [size, size, 3] });
    const feat2Layer = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'feat' });
    const head2Layer = tf.layers.conv2d({ filters: C, kernelSize: 1, name: 'logits' });
    const folded = tf.model({ inputs: input2, outputs: head2Layer.apply(feat2Layer.apply(input2)) as tf.SymbolicTensor });
    feat2Layer.setWeights(featLayer.getWeights());
    setWeights(
      head2Layer,
      { data: Array.from(kd, (v, i) => v * s[Math.floor(i / C)]), shape: [1, 1, 4, C] },
      { data: Array.from(bd, (v, j) => v + t.reduce((acc, tk, k) => acc + tk * kd[k * C + j], 0)), shape: [C] },
    );
    const request = { region, classId: 1, layer: 'feat', method: 'shapley-cam', score: 'probability' as const };
    const a = new Explainer(new LayersModelAdapter(withBn));
    const b = new Explainer(new LayersModelAdapter(folded));
    const [ea, eb, ga] = [
      await a.explain(image, request),
      await b.explain(image, request),
      await a.explain(image, { ...request, method: 'seg-grad-cam' }),
    ];
    assert.ok(maxAbsDiff(ea.weights ?? [], ga.weights ?? []) > 1e-2 * maxAbs(ea.weights ?? []), 'the Hessian term must matter');
    close(ea.weights ?? [], eb.weights ?? [], 1e-4);
    a.dispose();
    b.dispose();
  });
});

describe('refusal', () => {
  test('an engine without H·A (as ONNX) gets a typed "not supported" refusal', async () => {
    const model = quadraticHead();
    const adapter = new LayersModelAdapter(model);
    const x = inputOf(image);
    const pass = await adapter.forward(x);
    const lean: ForwardPass = { ...pass, hessianActivationProduct: undefined };
    const objective = regionObjective(adapter.output, 1, new Uint8Array(N).fill(1), 'logits');
    await assert.rejects(
      runMethod(createMethod('shapley-cam'), {
        adapter,
        pass: lean,
        input: x,
        layer: { name: 'feat', type: 'Conv2D', outputShape: [1, size, size, K] },
        objective,
        inputRange: [0, 1],
      }),
      (e: unknown) => e instanceof SegGradCamError && e.code === 'model' && /shapley-cam is not supported by this model/.test(e.message),
    );
    x.dispose();
    pass.dispose();
  });

  test('the explorer greys shapley-cam on the ONNX engine (no H·A) and not on the TF.js ones', async () => {
    const { unsupportedMethods } = await import('../src/explain/support.js');
    const { segmentationTriple } = await import('./helpers/engine-triple.js');
    const t = await segmentationTriple(8, 3, 2);
    assert.match((await unsupportedMethods(t.onnx, t.onnx.layers()))['shapley-cam'] ?? '', /ShapleyCAM needs second derivatives.*onnx/);
    for (const a of [t.layers, t.graph]) assert.equal((await unsupportedMethods(a, a.layers()))['shapley-cam'], undefined, a.kind);
    for (const a of [t.layers, t.graph, t.onnx]) a.dispose();
  });
});
