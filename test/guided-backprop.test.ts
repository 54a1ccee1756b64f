/**
 * Guided backpropagation and Guided Grad-CAM: the guided gradient of a tiny ReLU net computed by hand (LayersModel and
 * ONNX), LayersModel = ONNX on the parity U-Net (1e-4), Guided Grad-CAM = the max-scaled Seg-Grad-CAM ⊙ the guided map
 * (from the two methods' own maps) and equal on the three engines (the GraphModel run node by node), tensor counts.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter, Objective } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder as OnnxBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { Explainer } from '../src/explain.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { segmentationTriple } from './helpers/engine-triple.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/*
 * One pixel, x = (1, 1) → conv 1x1 W₁ = [[1, −1, 2], [1, 2, −3]] (rows: input channels), ReLU: pre = (2, 1, −1) →
 * conv 1x1 W₂ = (1, −2, 5): S = y. ∂S/∂h = (1, −2, 5); the ReLU: unit 3 is off (pre < 0), so the plain gradient at
 * pre is (1, −2, 0) and the guided one (1, 0, 0) (unit 2's gradient is negative). ∂S/∂x = W₁ · (1, −2, 0) = (3, −3);
 * guided: W₁ · (1, 0, 0) = (1, 1).
 */
const W1 = [1, -1, 2, 1, 2, -3];
const W2 = [1, -2, 5];

async function handNets(): Promise<Array<[string, ModelAdapter]>> {
  const input = tf.input({ shape: [1, 1, 2] });
  const c1 = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, activation: 'relu' });
  const c2 = tf.layers.conv2d({ filters: 1, kernelSize: 1, useBias: false });
  const model = tf.model({ inputs: input, outputs: c2.apply(c1.apply(input)) as tf.SymbolicTensor });
  c1.setWeights([tf.tensor4d(W1, [1, 1, 2, 3])]);
  c2.setWeights([tf.tensor4d(W2, [1, 1, 3, 1])]);

  const m = emptyModel(13);
  const o = new OnnxBuilder(m.graph);
  m.graph.input.push(valueInfo(o.claim('input'), DataType.FLOAT, [1, 2, 1, 1]));
  const k1 = o.floats('w1', [3, 2, 1, 1], [W1[0], W1[3], W1[1], W1[4], W1[2], W1[5]]);
  const h = o.op('Relu', [o.op('Conv', ['input', k1], { kernel_shape: { ints: [1, 1] } })]);
  o.node('Conv', [h, o.floats('w2', [1, 3, 1, 1], W2)], { kernel_shape: { ints: [1, 1] } }, [o.claim('output')]);
  m.graph.output.push(valueInfo('output', DataType.FLOAT, [1, 1, 1, 1]));
  return [
    ['layers-model', new LayersModelAdapter(model)],
    ['onnx', await OnnxModelAdapter.create(encodeModel(m), nodeRuntime)],
  ];
}

test('the guided gradient of a tiny ReLU net equals the hand-computed one (LayersModel and ONNX)', async () => {
  const nets = await handNets();
  try {
    const objective: Objective = { weights: Float32Array.from([1]), on: 'logits', offset: 0 };
    for (const [kind, adapter] of nets) {
      const x = tf.tensor4d([1, 1], [1, 1, 1, 2]);
      const before = tf.memory().numTensors;
      const g = adapter.guidedGradient!(x, objective);
      assert.equal(tf.memory().numTensors, before + 1, `${kind}: only the result is left`);
      assert.deepEqual(Array.from(g.dataSync()), [1, 1], `${kind}: guided gradient`);
      const plain = await adapter.inputGradients(x, objective);
      assert.deepEqual(Array.from(plain.gradients.dataSync()), [3, -3], `${kind}: the plain gradient differs`);
      tf.dispose([x, g, plain.gradients]);
    }
  } finally {
    for (const [, a] of nets) a.dispose();
  }
});

test('guided backpropagation and Guided Grad-CAM: LayersModel = ONNX on the parity U-Net (1e-4)', async () => {
  const { model, params, spec } = buildUnet({ height: 16, width: 32, base: 4, levels: 2, classes: 3, seed: 3 });
  const onnx = await OnnxModelAdapter.create(encodeModel(model), nodeRuntime);
  const layers = new LayersModelAdapter(unetLayersModel(params, spec));
  try {
    const x = tf.randomUniform([1, 16, 32, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const m = new Uint8Array(16 * 32);
    for (let y = 3; y < 11; y++) for (let xx = 5; xx < 20; xx++) m[y * 32 + xx] = 1;
    const objective = regionObjective(layers.output, 1, m, 'logits');
    const gl = layers.guidedGradient(x, objective);
    const go = onnx.guidedGradient(x, objective);
    const plain = await layers.inputGradients(x, objective);
    const scale = maxAbs(gl.dataSync());
    assert.ok(scale > 1e-4, 'a non-zero guided gradient');
    assert.ok(
      maxAbsDiff(gl.dataSync(), go.dataSync()) <= 1e-4 * scale,
      `guided gradients differ by ${maxAbsDiff(gl.dataSync(), go.dataSync())}`,
    );
    assert.ok(maxAbsDiff(gl.dataSync(), plain.gradients.dataSync()) > 1e-2 * scale, 'guided differs from the plain gradient');
    tf.dispose([x, gl, go, plain.gradients]);
    const image = randomImage(32, 16, 2);
    for (const method of ['guided-backprop', 'guided-grad-cam']) {
      const request = { region: box(4, 2, 20, 12), classId: 2, method, layer: 'bottleneck' };
      const a = await new Explainer(layers).explain(image, request);
      const b = await new Explainer(onnx).explain(image, request);
      assert.ok(maxAbs(a.cam) > 0, `${method}: a map`);
      assert.ok(maxAbsDiff(a.cam, b.cam) <= 1e-4 * maxAbs(a.cam), `${method}: maps differ by ${maxAbsDiff(a.cam, b.cam)}`);
    }
  } finally {
    onnx.dispose();
    layers.dispose();
  }
});

test('Guided Grad-CAM = (Seg-Grad-CAM / its max) ⊙ the guided-backprop map; on every engine, equal; no tensor left', async () => {
  const triple = await segmentationTriple(8, 3, 2);
  const engines: Array<[string, ModelAdapter]> = [
    ['layers-model', triple.layers],
    ['graph-model', triple.graph],
    ['onnx', triple.onnx],
  ];
  try {
    const image = randomImage(8, 8, 5);
    // 'c2' has the input's 8x8 resolution, so the upsampling is the identity.
    const maps: Array<[string, Float32Array, Float32Array]> = [];
    const request = (method: string) => ({ region: box(1, 1, 6, 5), classId: 1, method, layer: 'c2' });
    for (const [kind, adapter] of engines) {
      const e = new Explainer(adapter);
      await e.explain(image, request('guided-backprop')); // the ONNX pass caches its input as a tensor when a method first reads it
      const before = tf.memory().numTensors;
      const guided = await e.explain(image, request('guided-backprop'));
      const gradCam = await e.explain(image, request('seg-grad-cam'));
      const both = await e.explain(image, request('guided-grad-cam'));
      assert.equal(tf.memory().numTensors, before, `${kind}: no tensor left`);
      const top = Math.max(...gradCam.cam);
      assert.ok(top > 0, `${kind}: a Grad-CAM map`);
      const expected = guided.cam.map((g, i) => (g * gradCam.cam[i]) / top);
      assert.ok(maxAbs(expected) > 0, `${kind}: a non-zero product`);
      assert.ok(
        maxAbsDiff(both.cam, expected) <= 1e-5 * maxAbs(expected),
        `${kind}: Guided Grad-CAM differs by ${maxAbsDiff(both.cam, expected)}`,
      );
      assert.deepEqual([both.camWidth, both.camHeight], [8, 8]);
      maps.push([kind, guided.cam, both.cam]);
    }
    for (const [kind, g, b] of maps.slice(1)) {
      assert.ok(maxAbsDiff(g, maps[0][1]) <= 1e-4 * maxAbs(maps[0][1]), `${kind}: guided-backprop differs from the LayersModel`);
      assert.ok(maxAbsDiff(b, maps[0][2]) <= 1e-4 * maxAbs(maps[0][2]), `${kind}: guided-grad-cam differs from the LayersModel`);
    }
  } finally {
    for (const [, a] of engines) a.dispose();
  }
});
