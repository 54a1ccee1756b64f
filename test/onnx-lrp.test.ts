/**
 * LRP on the ONNX engine: against the LayersModel engine on the same weights (the parity U-Net: Conv, Relu, MaxPool,
 * ConvTranspose, Concat), ε and αβ; on a bias-free net of the other ops, LRP-0 (ε → 0) against gradient × input
 * from the ONNX gradient graph (for piecewise-linear nets they are equal: Montavon et al. 2019, §10.2.1) and
 * conservation Σ R = S; a typed refusal naming an op without a rule.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import type { RelevanceOptions } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { UnsupportedOnnxOpError } from '../src/engine/onnx/lrp-ops.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { gaussian } from '../scripts/onnx/reference.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

test('ONNX LRP equals the LayersModel LRP on the parity U-Net (ε and αβ, 1e-4)', async () => {
  const { model, params, spec } = buildUnet({ height: 16, width: 32, base: 4, levels: 2, classes: 3, seed: 3 });
  const onnx = await OnnxModelAdapter.create(encodeModel(model), nodeRuntime);
  const layers = new LayersModelAdapter(unetLayersModel(params, spec));
  try {
    const x = tf.randomUniform([1, 16, 32, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const m = new Uint8Array(16 * 32);
    for (let y = 3; y < 11; y++) for (let xx = 5; xx < 20; xx++) m[y * 32 + xx] = 1;
    const objective = regionObjective(layers.output, 1, m, 'logits');
    const rules: RelevanceOptions[] = [
      { rule: 'epsilon', epsilon: 1e-6, alpha: 2, beta: 1 },
      { rule: 'epsilon', epsilon: 0.1, alpha: 2, beta: 1 },
      { rule: 'alpha-beta', epsilon: 1e-6, alpha: 2, beta: 1 },
      { rule: 'alpha-beta', epsilon: 1e-6, alpha: 1, beta: 0 },
    ];
    for (const options of rules) {
      const before = tf.memory().numTensors;
      const ro = onnx.relevance!(x, objective, options);
      assert.equal(tf.memory().numTensors, before + 1, 'only the result is left');
      const rl = layers.relevance!(x, objective, options);
      const scale = maxAbs(rl.dataSync());
      const d = maxAbsDiff(ro.dataSync(), rl.dataSync());
      assert.ok(scale > 1e-3, 'non-trivial relevance');
      assert.ok(
        d <= 1e-4 * scale,
        `${options.rule} (ε ${options.epsilon}, α ${options.alpha}): relevance differs by ${d} (scale ${scale})`,
      );
      tf.dispose([ro, rl]);
    }
    x.dispose();
    // Through the Explainer (the method): the same map.
    const [eo, el] = [new Explainer(onnx), new Explainer(layers)];
    const image = randomImage(32, 16, 2);
    const a = await eo.explain(image, { region: box(4, 2, 20, 12), classId: 2, method: 'lrp' });
    const b = await el.explain(image, { region: box(4, 2, 20, 12), classId: 2, method: 'lrp' });
    assert.ok(maxAbsDiff(a.cam, b.cam) <= 1e-4 * maxAbs(b.cam), `lrp maps differ by ${maxAbsDiff(a.cam, b.cam)}`);
  } finally {
    onnx.dispose();
    layers.dispose();
  }
});

/**
 * Bias-free: conv → Relu → MaxPool → grouped conv (2 groups) → LeakyRelu → depthwise conv → BatchNormalization
 * (zero mean and bias: linear) → AveragePool → Resize (nearest, ×4) → Concat with the first Relu → 1x1 conv, plus a
 * 1x1 conv of the first Relu through a Transpose pair (Add of two branches).
 */
function biasFreeNet(): Uint8Array {
  const m = emptyModel(13);
  const g = m.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 8, 8]));
  let seed = 1;
  const w = (dims: number[]) =>
    b.floats(
      'w',
      dims,
      gaussian(
        dims.reduce((p, q) => p * q, 1),
        seed++,
        0.5,
      ),
    );
  const conv = (x: string, dims: number[], attrs: Record<string, { i: number } | { ints: number[] }> = {}) =>
    b.op('Conv', [x, w(dims)], {
      kernel_shape: { ints: dims.slice(2) },
      pads: { ints: dims[2] === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] },
      ...attrs,
    });
  const r1 = b.op('Relu', [conv('input', [4, 3, 3, 3])]);
  const p = b.op('MaxPool', [r1], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  const c2 = b.op('LeakyRelu', [conv(p, [6, 2, 3, 3], { group: { i: 2 } })], { alpha: { f: 0.1 } });
  const dw = conv(c2, [6, 1, 3, 3], { group: { i: 6 } });
  const ones = (n: number, v: number) => b.floats('bn', [n], new Array<number>(n).fill(v));
  const bn = b.op('BatchNormalization', [dw, b.floats('scale', [6], gaussian(6, 40, 1)), ones(6, 0), ones(6, 0), ones(6, 2)]);
  const avg = b.op('AveragePool', [bn], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  const up = b.op('Resize', [avg, '', b.floats('scales', [4], [1, 1, 4, 4])], {
    mode: { s: 'nearest' },
    coordinate_transformation_mode: { s: 'asymmetric' },
    nearest_mode: { s: 'floor' },
  });
  const cat = b.op('Concat', [up, r1], { axis: { i: 1 } });
  const o1 = conv(cat, [2, 10, 1, 1]);
  const t = b.op('Transpose', [r1], { perm: { ints: [0, 2, 3, 1] } });
  const back = b.op('Transpose', [t], { perm: { ints: [0, 3, 1, 2] } });
  const o2 = conv(back, [2, 4, 1, 1]);
  b.node('Add', [o1, o2], {}, [b.claim('output')]);
  g.output.push(valueInfo('output', DataType.FLOAT, [1, 2, 8, 8]));
  return encodeModel(m);
}

test('ONNX LRP-0 on a bias-free net of the other ops: gradient × input, and Σ R = S', async () => {
  const onnx = await OnnxModelAdapter.create(biasFreeNet(), nodeRuntime);
  try {
    const x = tf.randomUniform([1, 8, 8, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const objective = { weights: Float32Array.from(gaussian(128, 9, 1)), on: 'logits' as const, offset: 0 };
    const r = onnx.relevance!(x, objective, { rule: 'epsilon', epsilon: 1e-9, alpha: 2, beta: 1 });
    const { gradients, scores } = await onnx.inputGradients(x, objective);
    const gxi = tf.mul(gradients, x);
    const scale = maxAbs(gxi.dataSync());
    assert.ok(scale > 1e-3, 'non-trivial gradients');
    const d = maxAbsDiff(r.dataSync(), gxi.dataSync());
    assert.ok(d <= 1e-4 * scale, `LRP-0 vs gradient × input: ${d} (scale ${scale})`);
    const total = r.sum().dataSync()[0];
    assert.ok(Math.abs(total - scores[0]) <= 1e-4 * Math.max(1, Math.abs(scores[0])), `Σ R = ${total}, S = ${scores[0]}`);
    tf.dispose([x, r, gradients, gxi]);
  } finally {
    onnx.dispose();
  }
});

test('ONNX LRP names an op without a rule (a typed refusal, before any tensor work)', async () => {
  const m = emptyModel(13);
  const b = new GraphBuilder(m.graph);
  m.graph.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 4, 4]));
  const c = b.op('Conv', ['input', b.floats('w', [2, 3, 1, 1], gaussian(6, 1, 1))], { kernel_shape: { ints: [1, 1] } });
  b.node('Sin', [c], {}, [b.claim('output')], 'the_sine');
  m.graph.output.push(valueInfo('output', DataType.FLOAT, [1, 2, 4, 4]));
  const onnx = await OnnxModelAdapter.create(encodeModel(m), nodeRuntime);
  try {
    const x = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const objective = { weights: new Float32Array(32).fill(1), on: 'logits' as const, offset: 0 };
    assert.throws(
      () => onnx.relevance!(x, objective, { rule: 'epsilon', epsilon: 1e-6, alpha: 2, beta: 1 }),
      (e: unknown) =>
        e instanceof UnsupportedOnnxOpError && e instanceof SegGradCamError && /the_sine/.test(e.message) && /op Sin/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  } finally {
    onnx.dispose();
  }
});
