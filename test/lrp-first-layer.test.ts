/**
 * LRP's first-layer rules z⁺ and zᴮ (Zennit's ZPlus and ZBox for the layer that reads the input): relevances computed by
 * hand on a 1-conv/1-dense net on every engine (LayersModel, GraphModel, ONNX); conservation on a bias-free net (Σ input
 * relevance = S for ε → 0); the three engines equal on the same weights (1e-4); typed refusals.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../src/errors.js';
import type { ModelAdapter, Objective, RelevanceOptions } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder as OnnxBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { Lrp } from '../src/methods/lrp.js';
import { Explainer } from '../src/explain.js';
import { box } from '../src/region/region.js';
import { GraphBuilder, convAttrs, fusedAttrs } from './helpers/graph-builder.js';
import { segmentationTriple } from './helpers/engine-triple.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/*
 * The hand net: one pixel with two channels x = (1, −0.5) → conv 1x1 with W = [[2, 1], [1, −1]] (rows: input channels),
 * b = (0.5, −0.5), ReLU: a = (2, 1) → dense V = (1, 3)ᵀ, no bias: y = 5. The dense layer (ε → 0) gives the conv's
 * outputs R = (2, 3). First layer, by hand:
 *   z⁺: neuron 1's positive contributions are x₁w₁₁ = 2 only (x₂w₂₁ = −0.5): (2, 0); neuron 2's are 1 and 0.5: (2, 1).
 *       R_x = (4, 1).
 *   zᴮ (l = −1, h = 1): z_jk = x_j w_jk − l w⁺_jk − h w⁻_jk. Neuron 1: (4, 0.5) → 2·(4, 0.5)/4.5 = (16/9, 2/9);
 *       neuron 2: (2, 1.5) → 3·(2, 1.5)/3.5 = (12/7, 9/7). R_x = (220/63, 95/63).
 *   same (ε → 0, bias in z): neuron 1: 2·(2, −0.5)/2 = (2, −0.5); neuron 2: 3·(1, 0.5)/1 = (3, 1.5). R_x = (5, 1).
 */
const X = [1, -0.5];
const W = [2, 1, 1, -1]; // [in][out]
const B = [0.5, -0.5];
const V = [1, 3];
const EXPECTED: Record<string, number[]> = {
  'z-plus': [4, 1],
  'z-box': [220 / 63, 95 / 63],
  same: [5, 1],
};

async function handNets(): Promise<Array<[string, ModelAdapter]>> {
  const input = tf.input({ shape: [1, 1, 2] });
  const conv = tf.layers.conv2d({ name: 'conv', filters: 2, kernelSize: 1, activation: 'relu' });
  const flat = tf.layers.flatten({ name: 'flat' });
  const dense = tf.layers.dense({ name: 'dense', units: 1, useBias: false });
  const model = tf.model({ inputs: input, outputs: dense.apply(flat.apply(conv.apply(input))) as tf.SymbolicTensor });
  conv.setWeights([tf.tensor4d(W, [1, 1, 2, 2]), tf.tensor1d(B)]);
  dense.setWeights([tf.tensor2d(V, [2, 1])]);

  const g = new GraphBuilder();
  g.input('x', [1, 1, 1, 2]);
  g.op('conv', '_FusedConv2D', ['x', g.constant('w', W, [1, 1, 2, 2]), g.constant('b', B, [2])], {
    ...convAttrs(1, 'VALID'),
    ...fusedAttrs('BiasAdd', 'Relu'),
  });
  g.op('flat', 'Reshape', ['conv', g.constant('shape', [1, 2], [2], 'int32')], { Tshape: { type: 'DT_INT32' } });
  g.op('dense', 'MatMul', ['flat', g.constant('v', V, [2, 1])], { transpose_a: { b: false }, transpose_b: { b: false } });

  const m = emptyModel(13);
  const o = new OnnxBuilder(m.graph);
  m.graph.input.push(valueInfo(o.claim('input'), DataType.FLOAT, [1, 2, 1, 1]));
  // ONNX kernel [out, in, 1, 1] = Wᵀ.
  const c = o.op('Conv', ['input', o.floats('w', [2, 2, 1, 1], [W[0], W[2], W[1], W[3]]), o.floats('b', [2], B)], {
    kernel_shape: { ints: [1, 1] },
  });
  const r = o.op('Relu', [c]);
  const f = o.op('Flatten', [r], { axis: { i: 1 } });
  o.node('Gemm', [f, o.floats('v', [2, 1], V)], {}, [o.claim('output')]);
  m.graph.output.push(valueInfo('output', DataType.FLOAT, [1, 1]));

  return [
    ['layers-model', new LayersModelAdapter(model)],
    ['graph-model', await g.load()],
    ['onnx', await OnnxModelAdapter.create(encodeModel(m), nodeRuntime)],
  ];
}

const options = (firstLayer: RelevanceOptions['firstLayer']): RelevanceOptions => ({
  rule: 'epsilon',
  epsilon: 1e-9,
  alpha: 2,
  beta: 1,
  firstLayer,
  low: -1,
  high: 1,
});

test('z⁺ and zᴮ first-layer relevances equal the hand-computed ones on every engine', async () => {
  const nets = await handNets();
  try {
    const objective: Objective = { weights: Float32Array.from([1]), on: 'logits', offset: 0 };
    for (const [kind, adapter] of nets) {
      for (const rule of ['z-plus', 'z-box', 'same'] as const) {
        const x = tf.tensor4d(X, [1, 1, 1, 2]);
        const before = tf.memory().numTensors;
        const r = adapter.relevance!(x, objective, options(rule));
        assert.equal(tf.memory().numTensors, before + 1, `${kind} ${rule}: only the result is left`);
        const got = Array.from(r.dataSync());
        EXPECTED[rule].forEach((e, j) =>
          assert.ok(Math.abs(got[j] - e) <= 1e-5, `${kind} ${rule}: R_x${j + 1} = ${got[j]}, expected ${e}`),
        );
        tf.dispose([x, r]);
      }
    }
  } finally {
    for (const [, a] of nets) a.dispose();
  }
});

/** conv 3x3 (ReLU) → conv 3x3 (ReLU) → conv 1x1, no biases. */
function biasFree(): LayersModelAdapter {
  const input = tf.input({ shape: [6, 6, 3] });
  const conv = (filters: number, k: number, activation: 'relu' | 'linear', seed: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: k,
      padding: 'same',
      activation,
      useBias: false,
      kernelInitializer: tf.initializers.glorotNormal({ seed }),
    });
  const out = conv(2, 1, 'linear', 3).apply(conv(5, 3, 'relu', 2).apply(conv(4, 3, 'relu', 1).apply(input))) as tf.SymbolicTensor;
  return new LayersModelAdapter(tf.model({ inputs: input, outputs: out }));
}

test('z⁺ and zᴮ conserve relevance: Σ R_input = S on a bias-free net (ε → 0)', () => {
  const adapter = biasFree();
  try {
    const x = tf.randomUniform([1, 6, 6, 3], -1, 1, 'float32', 4) as tf.Tensor4D;
    const weights = new Float32Array(6 * 6 * 2);
    for (let i = 0; i < 36; i++) if (i % 5 < 3) weights[i * 2 + 1] = 1;
    const objective: Objective = { weights, on: 'logits', offset: 0 };
    const s = tf.tidy(() => tf.sum(tf.mul(adapter.runGraph(x, true), tf.tensor(weights, [1, 6, 6, 2]))).dataSync()[0]);
    assert.ok(Math.abs(s) > 0.1, `a non-trivial score (${s})`);
    for (const rule of ['z-plus', 'z-box'] as const) {
      const r = adapter.relevance(x, objective, options(rule));
      const total = tf.tidy(() => tf.sum(r).dataSync()[0]);
      assert.ok(Math.abs(total - s) <= 1e-4 * Math.max(1, Math.abs(s)), `${rule}: Σ R = ${total}, S = ${s}`);
      // The rule matters: it differs from the ε-rule's input relevance.
      const same = adapter.relevance(x, objective, options('same'));
      assert.ok(maxAbsDiff(r.dataSync(), same.dataSync()) > 1e-3, `${rule} differs from the ε-rule`);
      tf.dispose([r, same]);
    }
    x.dispose();
  } finally {
    adapter.dispose();
  }
});

test('z⁺ and zᴮ: the three engines equal on the same weights (1e-4), through the method and the Explainer', async () => {
  const triple = await segmentationTriple(8, 3, 2);
  const engines: Array<[string, ModelAdapter]> = [
    ['layers-model', triple.layers],
    ['graph-model', triple.graph],
    ['onnx', triple.onnx],
  ];
  try {
    const image = randomImage(8, 8, 6);
    for (const firstLayerRule of ['z-plus', 'z-box'] as const) {
      const maps: Array<[string, Float32Array]> = [];
      for (const [kind, adapter] of engines) {
        const e = new Explainer(adapter);
        const r = await e.explain(image, { region: box(1, 1, 6, 5), classId: 1, method: 'lrp', methodOptions: { firstLayerRule } });
        maps.push([kind, r.cam]);
      }
      const scale = maxAbs(maps[0][1]);
      assert.ok(scale > 1e-4, `${firstLayerRule}: a non-zero map`);
      for (const [kind, cam] of maps.slice(1)) {
        const d = maxAbsDiff(cam, maps[0][1]);
        assert.ok(d <= 1e-4 * scale, `${firstLayerRule}: ${kind} differs from the LayersModel by ${d} (scale ${scale})`);
      }
    }
  } finally {
    for (const [, a] of engines) a.dispose();
  }
});

test('first-layer rules: typed refusals for bad options and for a model whose input is not read by a linear layer', () => {
  assert.throws(() => new Lrp({ firstLayerRule: 'z-minus' as never }), SegGradCamError);
  assert.throws(() => new Lrp({ firstLayerRule: 'z-box', low: 1, high: 0 }), SegGradCamError);
  const input = tf.input({ shape: [4, 4, 1] });
  const pooled = tf.layers.maxPooling2d({ poolSize: 2 }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(pooled) as tf.SymbolicTensor;
  const adapter = new LayersModelAdapter(tf.model({ inputs: input, outputs: out }));
  const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
  const objective: Objective = { weights: new Float32Array(2 * 2 * 2).fill(1), on: 'logits', offset: 0 };
  const before = tf.memory().numTensors;
  assert.throws(
    () => adapter.relevance(x, objective, options('z-plus')),
    (err: unknown) => err instanceof SegGradCamError && /reads the model input/.test(err.message),
  );
  assert.equal(tf.memory().numTensors, before, 'nothing left behind');
  x.dispose();
  adapter.dispose();
});
