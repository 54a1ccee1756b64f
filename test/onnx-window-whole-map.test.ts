/**
 * Windowed backward passes through MaxPool and Resize (src/engine/onnx/window.ts, whole-map VJPs):
 * their box rules against hand-computed boxes, and on the zoo's nested U-Net (every decoder stage
 * pools and upsamples inside) windowed gradients at the bottleneck and a decoder layer against the
 * same adapter with windows off (the whole-map graph, itself checked against PyTorch by
 * test/onnx-zoo*.test.ts).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import type { Objective } from '../src/engine/contract.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nchwToNhwc } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { opGradient } from '../src/engine/onnx/ops/index.js';
import { scaleKey, windowPlan, windowsFor } from '../src/engine/onnx/window.js';
import { regionObjective } from '../src/region/objective.js';
import { uniform } from '../scripts/onnx/reference.js';
import { maxAbsDiff, useCpu } from './helpers/setup.js';

before(useCpu);

const MODEL = new URL('../fixtures/zoo/u2net-like/model.onnx', import.meta.url).pathname;

test('box rules: 2x2 max-pooling reads 2x its output box; a 2x bilinear upsampling reads the neighbours of the rows it fills', async () => {
  const ad = await OnnxModelAdapter.create(new Uint8Array(await readFile(MODEL)), nodeRuntime);
  try {
    const an = ad.analysis;
    const pool = an.nodes.find((n) => n.opType === 'MaxPool');
    const up = an.nodes.find(
      (n) => n.opType === 'Resize' && an.shape(n.input[0])[2] >= 8 && an.shape(n.output[0])[2] === 2 * an.shape(n.input[0])[2],
    );
    assert.ok(pool && up);
    const poolBox = opGradient(pool)?.wholeMapBox?.(an, pool);
    const upBox = opGradient(up)?.wholeMapBox?.(an, up);
    assert.ok(typeof poolBox === 'function' && typeof upBox === 'function');
    // Pooled rows 3, 4 read input rows 6…9.
    assert.deepEqual(
      poolBox([
        [3, 5],
        [0, 1],
      ]),
      [
        [6, 10],
        [0, 2],
      ],
    );
    // half_pixel: output row 4 samples 1.75 (rows 1, 2), row 5 samples 2.25 (rows 2, 3); row 0 samples −0.25, clamped to row 0.
    assert.deepEqual(
      upBox([
        [4, 6],
        [0, 1],
      ]),
      [
        [1, 4],
        [0, 1],
      ],
    );
  } finally {
    ad.dispose();
  }
});

/**
 * A small RSU-like net, x [1, 2, 32, 48]: c1 = relu(conv3x3(x)) → max-pool → c2 = relu(conv3x3) →
 * max-pool → c3 = relu(dilated conv3x3) → bilinear 2x → concat c2 → d2 = relu(conv3x3) → nearest
 * 2x → concat c1 → d1 = relu(conv3x3); side = bilinear 4x of conv1x1(c3); logits = conv1x1 of
 * [d1, side] (3 channels). From c1 the path pools and upsamples twice.
 */
function rsu() {
  const model = emptyModel(13, 'rsu');
  const g = model.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo('x', DataType.FLOAT, [1, 2, 32, 48]));
  let seed = 1;
  const w = (dims: number[]) =>
    b.floats(
      'w',
      dims,
      uniform(
        dims.reduce((p, q) => p * q, 1),
        seed++,
        -0.6,
        0.6,
      ),
    );
  const conv = (t: string, cin: number, cout: number, k = 3, d = 1) =>
    b.op('Relu', [
      b.op('Conv', [t, w([cout, cin, k, k])], {
        kernel_shape: { ints: [k, k] },
        pads: { ints: Array(4).fill(((k - 1) * d) / 2) },
        dilations: { ints: [d, d] },
      }),
    ]);
  const pool = (t: string) => b.op('MaxPool', [t], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  const up = (t: string, f: number, mode: string) =>
    b.op('Resize', [t, '', b.floats('scales', [4], [1, 1, f, f])], {
      mode: { s: mode },
      coordinate_transformation_mode: { s: 'half_pixel' },
    });
  const c1 = b.node('Identity', [conv('x', 2, 4)], {}, ['c1'])[0];
  const c2 = b.node('Identity', [conv(pool(c1), 4, 4)], {}, ['c2'])[0];
  const c3 = b.node('Identity', [conv(pool(c2), 4, 4, 3, 2)], {}, ['c3'])[0];
  const d2 = conv(b.op('Concat', [up(c3, 2, 'linear'), c2], { axis: { i: 1 } }), 8, 4);
  const d1 = conv(b.op('Concat', [up(d2, 2, 'nearest'), c1], { axis: { i: 1 } }), 8, 4);
  const side = up(b.op('Conv', [c3, w([1, 4, 1, 1])], { kernel_shape: { ints: [1, 1] } }), 4, 'linear');
  b.node('Conv', [b.op('Concat', [d1, side], { axis: { i: 1 } }), w([3, 5, 1, 1])], { kernel_shape: { ints: [1, 1] } }, ['logits']);
  g.output.push(valueInfo('logits', DataType.FLOAT, [1, 3, 32, 48]));
  return model;
}

test('windowed gradients through MaxPool and Resize (whole-map VJPs) equal the whole-map graph, and the full-size window stays small', async () => {
  const bytes = encodeModel(rsu());
  const windowed = await OnnxModelAdapter.create(bytes, nodeRuntime, { windowMaxArea: 1 });
  const whole = await OnnxModelAdapter.create(bytes, nodeRuntime, { windowMaxArea: 0 });
  try {
    const x = tf.tensor4d(nchwToNhwc(uniform(2 * 32 * 48, 5, 0, 1), 1, 2, 32, 48), [1, 32, 48, 2]);
    const regions = [
      { y0: 15, y1: 16, x0: 20, x1: 21 }, // one pixel
      { y0: 0, y1: 3, x0: 0, x1: 5 }, // a corner
      { y0: 24, y1: 32, x0: 36, x1: 48 }, // the bottom-right edge
      { y0: 9, y1: 19, x0: 13, x1: 27 }, // an odd box
    ];
    let smaller = 0;
    const passW = await windowed.forward(x);
    const passF = await whole.forward(x);
    for (const layer of ['c1', 'c2', 'c3']) {
      const plan = windowPlan(windowed.analysis, layer, windowed.logitsName);
      assert.ok(!('reason' in plan), `a window plan at ${layer}: ${'reason' in plan ? plan.reason : ''}`);
      assert.ok(plan.steps.some((s) => s.whole && s.node.opType === 'Resize'));
      if (layer !== 'c3') assert.ok(plan.steps.some((s) => s.whole && s.node.opType === 'MaxPool'));
      for (const [i, r] of regions.entries()) {
        const full = windowsFor(
          plan,
          [
            [r.y0, r.y1],
            [r.x0, r.x1],
          ],
          windowed.analysis,
        ).get(scaleKey([1, 1]));
        if (full && (full[0][1] - full[0][0]) * (full[1][1] - full[1][0]) < 32 * 48) smaller++;
        const mask = new Uint8Array(32 * 48);
        for (let y = r.y0; y < r.y1; y++) for (let xx = r.x0; xx < r.x1; xx++) mask[y * 48 + xx] = 1;
        const o: Objective = regionObjective(windowed.output, i % 3, mask, 'logits');
        const a = await passW.gradient(layer, o);
        const b = await passF.gradient(layer, o);
        const scale = Math.max(...Array.from(b.gradients.dataSync(), Math.abs));
        assert.ok(scale > 0, `${layer} ${JSON.stringify(r)}: a gradient reaches the layer`);
        const d = maxAbsDiff(a.gradients.dataSync(), b.gradients.dataSync());
        assert.ok(d <= 1e-6 * scale, `${layer} ${JSON.stringify(r)}: windowed vs whole ${d} (scale ${scale})`);
        tf.dispose([a.activations, a.gradients, b.activations, b.gradients]);
      }
    }
    assert.ok(smaller >= 6, `the full-size windows were smaller than the map (${smaller} of 12)`);
    passW.dispose();
    passF.dispose();
    x.dispose();
  } finally {
    windowed.dispose();
    whole.dispose();
  }
});

test('the nested U-Net at 64x64: windowed gradients at the bottleneck equal the whole-map ones', async () => {
  const bytes = new Uint8Array(await readFile(MODEL));
  const windowed = await OnnxModelAdapter.create(bytes, nodeRuntime, { windowMaxArea: 1 });
  const whole = await OnnxModelAdapter.create(bytes, nodeRuntime, { windowMaxArea: 0 });
  try {
    const [, c, h, w] = windowed.inputDims;
    const x = tf.tensor4d(nchwToNhwc(uniform(c * h * w, 5, 0, 1), 1, c, h, w), [1, h, w, c]);
    const bottleneck = new Explainer(windowed).bottleneck;
    assert.equal(bottleneck, '/stage6/Add_output_0');
    const plan = windowPlan(windowed.analysis, bottleneck, windowed.logitsName);
    assert.ok(!('reason' in plan), `a window plan: ${'reason' in plan ? plan.reason : ''}`);
    const { height: H, width: W } = windowed.output;
    const passW = await windowed.forward(x);
    const passF = await whole.forward(x);
    for (const r of [
      { y0: 30, y1: 31, x0: 20, x1: 21 },
      { y0: 40, y1: 64, x0: 50, x1: 64 },
    ]) {
      const mask = new Uint8Array(H * W);
      for (let y = r.y0; y < r.y1; y++) for (let xx = r.x0; xx < r.x1; xx++) mask[y * W + xx] = 1;
      const o: Objective = regionObjective(windowed.output, 0, mask, 'logits');
      const a = await passW.gradient(bottleneck, o);
      const b = await passF.gradient(bottleneck, o);
      const scale = Math.max(...Array.from(b.gradients.dataSync(), Math.abs));
      const d = maxAbsDiff(a.gradients.dataSync(), b.gradients.dataSync());
      assert.ok(scale > 0 && d <= 1e-5 * scale, `${JSON.stringify(r)}: windowed vs whole ${d} (scale ${scale})`);
      tf.dispose([a.activations, a.gradients, b.activations, b.gradients]);
    }
    passW.dispose();
    passF.dispose();
    x.dispose();
  } finally {
    windowed.dispose();
    whole.dispose();
  }
});
