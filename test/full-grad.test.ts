/**
 * FullGrad: completeness of the raw decomposition (S − offset = Σ x ⊙ ∂S/∂x + Σ b ⊙ ∂S/∂z over every biased layer, for
 * piecewise-linear ReLU nets on logits) on the parity U-Net (LayersModel and ONNX) and on a net with BatchNormalization
 * and a dense head; the map's post-processing against a hand computation; LayersModel = ONNX on the same weights
 * (1e-4) and = the GraphModel (run node by node); tensor counts.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { BiasGradients, ModelAdapter, Objective } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { Explainer } from '../src/explain.js';
import { fullGradMap } from '../src/methods/full-grad.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { segmentationTriple } from './helpers/engine-triple.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/** Σ x ⊙ ∂S/∂x + Σ of every bias term, and the number of terms. */
function completeness(x: tf.Tensor4D, parts: BiasGradients): number {
  return tf.tidy(() => {
    let total = tf.sum(tf.mul(x, parts.inputGradient));
    for (const { term } of parts.biasTerms) total = tf.add(total, tf.sum(term));
    return total.dataSync()[0];
  });
}

const free = (parts: BiasGradients) => tf.dispose([parts.inputGradient, ...parts.biasTerms.map((t) => t.term)]);

async function parityUnet(): Promise<{ layers: LayersModelAdapter; onnx: OnnxModelAdapter }> {
  const { model, params, spec } = buildUnet({ height: 16, width: 32, base: 4, levels: 2, classes: 3, seed: 3 });
  return {
    layers: new LayersModelAdapter(unetLayersModel(params, spec)),
    onnx: await OnnxModelAdapter.create(encodeModel(model), nodeRuntime),
  };
}

test('FullGrad completeness on the parity U-Net: S − offset = Σ x·∂S/∂x + Σ b·∂S/∂z (LayersModel and ONNX), engines equal', async () => {
  const { layers, onnx } = await parityUnet();
  try {
    const x = tf.randomUniform([1, 16, 32, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const m = new Uint8Array(16 * 32);
    for (let y = 3; y < 11; y++) for (let xx = 5; xx < 20; xx++) m[y * 32 + xx] = 1;
    const objective = { ...regionObjective(layers.output, 1, m, 'logits'), offset: 0.75 };
    const results: BiasGradients[] = [];
    for (const adapter of [layers, onnx]) {
      const before = tf.memory().numTensors;
      const parts = adapter.biasGradients(x, objective);
      assert.equal(tf.memory().numTensors, before + 1 + parts.biasTerms.length, `${adapter.kind}: only the results are left`);
      // 2 levels: 2 convs per encoder block and the bottleneck (6), an up-conv and 2 convs per decoder block (6), the 1x1.
      assert.equal(parts.biasTerms.length, 13, `${adapter.kind}: one term per biased layer`);
      const sum = completeness(x, parts);
      const s = parts.score - objective.offset;
      assert.ok(Math.abs(s) > 1, `${adapter.kind}: a non-trivial score (${s})`);
      assert.ok(Math.abs(sum - s) <= 1e-4 * Math.abs(s), `${adapter.kind}: Σ = ${sum}, S − offset = ${s}`);
      // The bias terms matter: the input term alone is not S.
      const inputOnly = tf.tidy(() => tf.sum(tf.mul(x, parts.inputGradient)).dataSync()[0]);
      assert.ok(Math.abs(inputOnly - s) > 1e-3 * Math.abs(s), `${adapter.kind}: the bias terms carry part of S (${inputOnly} vs ${s})`);
      results.push(parts);
    }
    const [a, b] = results;
    assert.ok(maxAbsDiff(a.inputGradient.dataSync(), b.inputGradient.dataSync()) <= 1e-4 * maxAbs(a.inputGradient.dataSync()));
    a.biasTerms.forEach((t, k) => {
      const u = b.biasTerms[k].term;
      assert.deepEqual(u.shape, t.term.shape, `term ${k}: shape (channels last on both engines)`);
      const d = maxAbsDiff(t.term.dataSync(), u.dataSync());
      assert.ok(d <= 1e-4 * Math.max(1e-6, maxAbs(t.term.dataSync())), `term ${k} (${t.layer} / ${b.biasTerms[k].layer}) differs by ${d}`);
    });
    const maps = results.map((p) => fullGradMap(x, p));
    assert.ok(maxAbsDiff(maps[0].dataSync(), maps[1].dataSync()) <= 1e-4 * maxAbs(maps[0].dataSync()), 'the maps equal');
    tf.dispose([x, ...maps]);
    results.forEach(free);
    // Through the Explainer: the same map on both engines.
    const image = randomImage(32, 16, 3);
    const [el, eo] = [new Explainer(layers), new Explainer(onnx)];
    const r1 = await el.explain(image, { region: box(4, 2, 20, 12), classId: 2, method: 'full-grad' });
    const r2 = await eo.explain(image, { region: box(4, 2, 20, 12), classId: 2, method: 'full-grad' });
    assert.ok(maxAbsDiff(r1.cam, r2.cam) <= 1e-4 * maxAbs(r1.cam), `explain maps differ by ${maxAbsDiff(r1.cam, r2.cam)}`);
  } finally {
    layers.dispose();
    onnx.dispose();
  }
});

test('FullGrad completeness with BatchNormalization (its effective bias), max-pooling, up-sampling and a dense head', () => {
  const input = tf.input({ shape: [8, 8, 2] });
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const bias = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.3, seed });
  let t = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(1), biasInitializer: bias(2) })
    .apply(input);
  const bn = tf.layers.batchNormalization({ name: 'bn' });
  t = bn.apply(t);
  t = tf.layers.reLU().apply(t);
  t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(t);
  t = tf.layers
    .conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(3), biasInitializer: bias(4) })
    .apply(t);
  t = tf.layers.upSampling2d({ size: [2, 2] }).apply(t);
  const map = tf.layers.conv2d({ name: 'map', filters: 2, kernelSize: 1, kernelInitializer: init(5), biasInitializer: bias(6) }).apply(t);
  const flat = tf.layers.flatten().apply(tf.layers.maxPooling2d({ poolSize: 4 }).apply(map));
  const out = tf.layers.dense({ units: 3, kernelInitializer: init(7), biasInitializer: bias(8) }).apply(flat) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  bn.setWeights([
    tf.tensor1d([1.5, 0.5, -1, 2]),
    tf.tensor1d([0.2, -0.4, 0.1, 0.3]),
    tf.tensor1d([0.1, -0.2, 0.3, 0]),
    tf.tensor1d([0.5, 2, 1, 0.25]),
  ]);
  const adapter = new LayersModelAdapter(model);
  try {
    const x = tf.randomUniform([1, 8, 8, 2], -1, 1, 'float32', 3) as tf.Tensor4D;
    const objective: Objective = { weights: Float32Array.from([0.5, -1, 2]), on: 'logits', offset: 0 };
    const parts = adapter.biasGradients(x, objective);
    assert.deepEqual(
      parts.biasTerms.map((p) => p.term.rank),
      [4, 4, 4, 4, 2],
      'conv, its BatchNorm, conv, the 1x1 conv and the dense layer',
    );
    const sum = completeness(x, parts);
    assert.ok(Math.abs(sum - parts.score) <= 1e-4 * Math.max(1, Math.abs(parts.score)), `Σ = ${sum}, S = ${parts.score}`);
    // Without the BatchNorm term the sum is off (its effective bias is not zero).
    const bnTerm = tf.tidy(() => tf.sum(parts.biasTerms[1].term).dataSync()[0]);
    assert.ok(Math.abs(bnTerm) > 1e-3, `the BatchNorm term counts (${bnTerm})`);
    free(parts);
    x.dispose();
  } finally {
    adapter.dispose();
  }
});

test('FullGrad map: ψ = (|t| − min) / (max + 1e-6) per tensor, channels summed, layer maps upsampled (hand-computed)', () => {
  // x ⊙ g = (3, −2) → |·| = (3, 2) → (1, 0)/(1 + 1e-6); a 1x2 bias term with channels (1, −3) and (2, 0) → |·|/3 →
  // channel sums (4/3, 2/3). Map = (1/(1 + 1e-6) + 4/3, 2/3) (the 1x2 term is already at the input size).
  const x = tf.tensor4d([1, 2], [1, 1, 2, 1]);
  const parts: BiasGradients = {
    score: 0,
    inputGradient: tf.tensor4d([3, -1], [1, 1, 2, 1]),
    biasTerms: [
      { layer: 'a', term: tf.tensor4d([1, -3, 2, 0], [1, 1, 2, 2]) },
      { layer: 'dense', term: tf.tensor2d([[100, -50]]) },
    ],
  };
  const m = fullGradMap(x, parts).dataSync();
  const expected = [1 / (1 + 1e-6) + 4 / (3 + 1e-6), 2 / (3 + 1e-6)];
  expected.forEach((e, i) => assert.ok(Math.abs(m[i] - e) <= 1e-6, `pixel ${i}: ${m[i]}, expected ${e}`));
  // A coarse term is upsampled with aligned corners: a 1x2 term to 1x3 puts its mean in the middle.
  const x3 = tf.zeros([1, 1, 3, 1]) as tf.Tensor4D;
  const up = fullGradMap(x3, {
    score: 0,
    inputGradient: tf.zeros([1, 1, 3, 1]),
    biasTerms: [{ layer: 'b', term: tf.tensor4d([0, 2], [1, 1, 2, 1]) }],
  });
  const u = up.dataSync();
  [0, 0.5 / (1 + 5e-7), 1 / (1 + 5e-7)].forEach((e, i) => assert.ok(Math.abs(u[i] - e) <= 1e-6, `upsampled ${i}: ${u[i]}, expected ${e}`));
  tf.dispose([x, x3, up, parts.inputGradient, ...parts.biasTerms.map((t) => t.term)]);
});

test('FullGrad on the three engines (the GraphModel node by node): equal maps and decompositions, no tensor left', async () => {
  const triple = await segmentationTriple(8, 3, 2);
  const engines: Array<[string, ModelAdapter]> = [
    ['layers-model', triple.layers],
    ['graph-model', triple.graph],
    ['onnx', triple.onnx],
  ];
  try {
    const image = randomImage(8, 8, 4);
    const cams: Float32Array[] = [];
    for (const [kind, adapter] of engines) {
      const e = new Explainer(adapter);
      // The ONNX pass caches the input as a tensor when a method first reads it: warm it (FullGrad reads it).
      await e.explain(image, { region: box(1, 1, 5, 5), classId: 1, method: 'full-grad' });
      const before = tf.memory().numTensors;
      const r = await e.explain(image, { region: box(1, 1, 5, 5), classId: 1, method: 'full-grad' });
      assert.ok(maxAbs(r.cam) > 0, `${kind}: a map`);
      assert.equal(tf.memory().numTensors, before, `${kind}: no tensor left`);
      cams.push(r.cam);
      // Completeness on each engine (c1, c2 and the 1x1 conv have biases).
      const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
      const objective: Objective = { weights: new Float32Array(8 * 8 * 3).map((_, i) => (i % 3 === 1 ? 1 : 0)), on: 'logits', offset: 0 };
      const parts = adapter.biasGradients!(x, objective);
      assert.equal(parts.biasTerms.length, 3, `${kind}: three biased layers`);
      const sum = completeness(x, parts);
      assert.ok(Math.abs(sum - parts.score) <= 1e-4 * Math.max(1, Math.abs(parts.score)), `${kind}: Σ = ${sum}, S = ${parts.score}`);
      free(parts);
      x.dispose();
    }
    for (const cam of cams.slice(1))
      assert.ok(maxAbsDiff(cam, cams[0]) <= 1e-4 * maxAbs(cams[0]), `maps differ by ${maxAbsDiff(cam, cams[0])}`);
  } finally {
    for (const [, a] of engines) a.dispose();
  }
});
