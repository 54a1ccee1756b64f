/**
 * Windowed backward passes (src/engine/onnx/window.ts): the window rules against hand-computed boxes
 * on a small chain, and windowed gradients against the same adapter with windows turned off
 * (the whole-map graph, itself checked against finite differences and PyTorch elsewhere).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { INPUT_LAYER, type Objective } from '../src/engine/contract.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { embedNchw, nchwToNhwc } from '../src/engine/onnx/layout.js';
import { logitsCotangent, stackNchw, weightsCotangent } from '../src/engine/onnx/cotangent.js';
import { maskBox } from '../src/region/objective.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { floatTensor } from '../src/engine/onnx/tensor.js';
import { windowFraction, windowPlan, windowsFor, type Box } from '../src/engine/onnx/window.js';
import { regionObjective } from '../src/region/objective.js';
import { box, pixel } from '../src/region/region.js';
import { uniform } from '../scripts/onnx/reference.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/** x [1,2,8,16] → Conv 3x3 pad 1 → Relu (t1) → ConvTranspose k2 s2 → Relu → Conv 1x1 → logits [1,3,16,32]. */
function chain() {
  const model = emptyModel(13, 'chain');
  const g = model.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo('x', DataType.FLOAT, [1, 2, 8, 16]));
  const w = (name: string, dims: number[]) =>
    b.initializer(
      floatTensor(
        name,
        dims,
        uniform(
          dims.reduce((p, q) => p * q, 1),
          dims.length,
          -0.5,
          0.5,
        ),
      ),
    );
  const c1 = b.node('Conv', ['x', w('w1', [4, 2, 3, 3])], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } }, ['c1'])[0];
  const t1 = b.node('Relu', [c1], {}, ['t1'])[0];
  const up = b.node('ConvTranspose', [t1, w('w2', [4, 4, 2, 2])], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }, ['up'])[0];
  const t2 = b.node('Relu', [up], {}, ['t2'])[0];
  b.node('Conv', [t2, w('w3', [3, 4, 1, 1])], { kernel_shape: { ints: [1, 1] } }, ['logits']);
  g.output.push(valueInfo('logits', DataType.FLOAT, [1, 3, 16, 32]));
  return model;
}

const objectiveOf = (ad: OnnxModelAdapter, b: { x0: number; y0: number; x1: number; y1: number }, cls: number): Objective => {
  const { height, width } = ad.output;
  const mask = new Uint8Array(height * width);
  for (let y = b.y0; y < b.y1; y++) for (let x = b.x0; x < b.x1; x++) mask[y * width + x] = 1;
  return regionObjective(ad.output, cls, mask, 'logits');
};

describe('window rules', () => {
  test('the window of a pixel through a 1x1 conv, an up-convolution and a 3x3 conv is the hand-computed box', async () => {
    const ad = await OnnxModelAdapter.create(encodeModel(chain()), nodeRuntime);
    const plan = windowPlan(ad.analysis, 't1', 'logits');
    assert.ok(!('reason' in plan), `t1 has a plan: ${'reason' in plan ? plan.reason : ''}`);
    // Logits pixel (5, 9): the 1x1 conv keeps it; the full-size window is aligned to whole pixels of
    // the half-size scale (the up-conv's VJP maps it there): [4, 6) × [8, 10). The k2 s2 up-conv
    // reads t1[2][4] → logits coordinates [4, 6) × [8, 10).
    assert.deepEqual(
      [
        ...windowsFor(
          plan,
          [
            [5, 6],
            [9, 10],
          ],
          ad.analysis,
        ),
      ],
      [
        [
          '1x1',
          [
            [4, 6],
            [8, 10],
          ],
        ],
        [
          '2x2',
          [
            [4, 6],
            [8, 10],
          ],
        ],
      ],
    );
    // One step further, to the input: the 3x3 conv (pad 1) widens t1's box by one → x [1, 4) × [3, 6) → logits [2, 8) × [6, 12).
    const toInput = windowPlan(ad.analysis, 'x', 'logits');
    assert.ok(!('reason' in toInput), 'the input has a plan');
    assert.deepEqual(
      [
        ...windowsFor(
          toInput,
          [
            [5, 6],
            [9, 10],
          ],
          ad.analysis,
        ),
      ],
      [
        [
          '1x1',
          [
            [4, 6],
            [8, 10],
          ],
        ],
        [
          '2x2',
          [
            [2, 8],
            [6, 12],
          ],
        ],
      ],
    );
    // At the border the windows stop at the map's edge: t1 [0, 1) × [15, 16), x [0, 2) × [14, 16).
    assert.deepEqual(
      [
        ...windowsFor(
          toInput,
          [
            [0, 1],
            [31, 32],
          ],
          ad.analysis,
        ),
      ],
      [
        [
          '1x1',
          [
            [0, 2],
            [30, 32],
          ],
        ],
        [
          '2x2',
          [
            [0, 4],
            [28, 32],
          ],
        ],
      ],
    );
    ad.dispose();
  });

  test('maskBox over channels, stackNchw and embedNchw', () => {
    // [h=4, w=6, c=2] weights: channel 1 at (y 2, x 1), channel 0 at (y 3, x 4).
    const nhwc = new Float32Array(4 * 6 * 2);
    nhwc[(2 * 6 + 1) * 2 + 1] = 1;
    nhwc[(3 * 6 + 4) * 2 + 0] = -2;
    assert.deepEqual(maskBox(nhwc, 4, 6, 2), [
      [2, 4],
      [1, 5],
    ]);
    assert.equal(maskBox(new Float32Array(48), 4, 6, 2), null);
    const win: Box = [
      [2, 4],
      [1, 5],
    ];
    const cot = { nhwc, support: win };
    // Cropped NCHW [1, 2, 2, 4]: channel 0 row 1 col 3 is (3, 4); channel 1 row 0 col 0 is (2, 1).
    const crop = stackNchw([cot], 4, 6, 2, win);
    assert.equal(crop.length, 2 * 2 * 4);
    assert.equal(crop[0 * 8 + 1 * 4 + 3], -2);
    assert.equal(crop[1 * 8 + 0 * 4 + 0], 1);
    assert.equal(
      crop.reduce((a, b) => a + Math.abs(b), 0),
      3,
      'nothing else is set',
    );
    // The whole map, two stacked (the second all zero): the NCHW transpose of the weights.
    const whole = stackNchw([cot, { nhwc: new Float32Array(48), support: null }], 4, 6, 2);
    const nchw = new Float32Array(2 * 24);
    nchw[1 * 24 + 2 * 6 + 1] = 1;
    nchw[0 * 24 + 3 * 6 + 4] = -2;
    assert.deepEqual(Array.from(whole), [...nchw, ...new Float32Array(48)]);
    assert.deepEqual(Array.from(embedNchw(crop, 2, 2, 4, 4, 6, 2, 1)), Array.from(nchw));
  });

  test('a region objective carries its box, and scores and cotangents inside it equal those over the whole map', () => {
    const output = { kind: 'map', height: 4, width: 6, channels: 3, activation: 'softmax' } as const;
    const mask = new Uint8Array(24);
    mask[1 * 6 + 2] = 1;
    mask[2 * 6 + 4] = 1;
    const logits = Float32Array.from({ length: 72 }, (_, i) => Math.sin(i * 1.7) * 3);
    for (const on of ['logits', 'probability'] as const) {
      const obj = regionObjective(output, 2, mask, on);
      assert.deepEqual(obj.support, [
        [1, 3],
        [2, 5],
      ]);
      const { support: _, ...boxless } = obj;
      const a = logitsCotangent(logits, obj, output);
      const b = logitsCotangent(logits, boxless, output);
      assert.deepEqual(
        b.cotangent.support,
        [
          [1, 3],
          [2, 5],
        ],
        'the box found from the weights',
      );
      // By hand: S = Σ_M y^2 over the two pixels (logits or softmax probabilities).
      const y = (p: number, c: number) => logits[p * 3 + c];
      const soft = (p: number, c: number) => Math.exp(y(p, c)) / [0, 1, 2].reduce((s, k) => s + Math.exp(y(p, k)), 0);
      const want = on === 'logits' ? y(8, 2) + y(16, 2) : soft(8, 2) + soft(16, 2);
      assert.ok(Math.abs(a.score - want) < 1e-9, `${on}: score ${a.score} vs ${want}`);
      assert.equal(a.score, b.score);
      assert.deepEqual(Array.from(a.cotangent.nhwc), Array.from(b.cotangent.nhwc));
    }
    assert.throws(
      () => weightsCotangent({ weights: new Float32Array(5), on: 'logits', offset: 0 }, output),
      /5 weights; the logits have 72/,
    );
  });

  test('an op without a window rule (a strided convolution on the way to the logits) gives a plan with its reason; max-pooling now has one', async () => {
    const ad = await OnnxModelAdapter.create(
      encodeModel(buildUnet({ height: 32, width: 64, base: 4, levels: 2, seed: 1 }).model),
      nodeRuntime,
    );
    // Max-pooling on the way from an encoder layer runs its VJP on whole maps (test/onnx-window-whole-map.test.ts).
    const encoder = ad.layers()[0].name;
    const plan = windowPlan(ad.analysis, encoder, ad.logitsName);
    assert.ok(!('reason' in plan) && plan.steps.some((s) => s.whole && s.node.opType === 'MaxPool'));
    ad.dispose();
    const model = emptyModel(13, 'strided');
    const g = model.graph;
    const b = new GraphBuilder(g);
    g.input.push(valueInfo('x', DataType.FLOAT, [1, 2, 8, 16]));
    const t = b.node(
      'Relu',
      [b.op('Conv', ['x', b.floats('w', [2, 2, 1, 1], [1, 0.5, -0.5, 1])], { kernel_shape: { ints: [1, 1] } })],
      {},
      ['t'],
    )[0];
    const down = b.op('Conv', [t, b.floats('w', [3, 2, 2, 2], uniform(24, 3))], {
      kernel_shape: { ints: [2, 2] },
      strides: { ints: [2, 2] },
    });
    b.node(
      'ConvTranspose',
      [down, b.floats('w', [3, 3, 2, 2], uniform(36, 4))],
      { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } },
      ['logits'],
    );
    g.output.push(valueInfo('logits', DataType.FLOAT, [1, 3, 8, 16]));
    const st = await OnnxModelAdapter.create(encodeModel(model), nodeRuntime);
    const p = windowPlan(st.analysis, 't', st.logitsName);
    assert.ok('reason' in p && /strided/.test(p.reason), `reason names the rule: ${JSON.stringify('reason' in p ? p.reason : 'none')}`);
    st.dispose();
  });
});

describe('windowed gradients equal whole-map gradients', () => {
  const spec = { height: 64, width: 128, base: 4, levels: 3, seed: 11 };
  const regions = [
    { x0: 0, y0: 0, x1: 12, y1: 6 }, // corner
    { x0: 60, y0: 30, x1: 61, y1: 31 }, // one pixel
    { x0: 90, y0: 40, x1: 128, y1: 64 }, // bottom-right edge
    { x0: 20, y0: 10, x1: 52, y1: 26 }, // interior box
  ];

  test('single regions, K stacked regions and several layers at once, at decoder layers and the bottleneck', async () => {
    const { model } = buildUnet(spec);
    const windowed = await OnnxModelAdapter.create(encodeModel(model), nodeRuntime);
    const whole = await OnnxModelAdapter.create(encodeModel(model), nodeRuntime, { windowMaxArea: 0 });
    const [, c, h, w] = windowed.inputDims;
    const x = tf.tensor4d(nchwToNhwc(uniform(c * h * w, 4, 0, 1), 1, c, h, w), [1, h, w, c]);
    const bottleneck = new Explainer(windowed).bottleneck;
    const layers = windowed.layers().map((l) => l.name);
    const decoder = layers.slice(layers.indexOf(bottleneck) + 1, -1);
    const passW = await windowed.forward(x);
    const passF = await whole.forward(x);
    let used = 0;
    for (const layer of [bottleneck, ...decoder.filter((_, i) => i % 2 === 0), INPUT_LAYER]) {
      const plan = windowPlan(windowed.analysis, windowed.resolve(layer), windowed.logitsName);
      for (const [i, r] of regions.entries()) {
        const o = objectiveOf(windowed, r, i % 3);
        if (!('reason' in plan)) {
          if (
            windowFraction(
              plan,
              windowsFor(
                plan,
                [
                  [r.y0, r.y1],
                  [r.x0, r.x1],
                ],
                windowed.analysis,
              ),
            ) <= 0.75
          )
            used++;
        }
        const a = await passW.gradient(layer, o);
        const b = await passF.gradient(layer, o);
        const scale = Math.max(...Array.from(b.gradients.dataSync(), Math.abs));
        assert.ok(scale > 0, `${layer} region ${i}: a gradient reaches the layer`);
        assert.ok(
          maxAbsDiff(a.gradients.dataSync(), b.gradients.dataSync()) <= 1e-6 * scale,
          `${layer} region ${i}: windowed vs whole ${maxAbsDiff(a.gradients.dataSync(), b.gradients.dataSync())} (scale ${scale})`,
        );
        tf.dispose([a.activations, a.gradients, b.activations, b.gradients]);
      }
    }
    assert.ok(used >= 8, `windows were used (${used} of the cases)`);
    // K stacked regions (their window is the union) and several layers in one run.
    // Far apart (one windowed run each) and nearby (stacked in one windowed run).
    const near = [regions[3], { x0: 22, y0: 12, x1: 50, y1: 24 }, { x0: 30, y0: 14, x1: 31, y1: 15 }];
    const objectives = [...regions.slice(0, 3), ...near].map((r, i) => objectiveOf(windowed, r, i % 8));
    const many = await passW.gradientBatch(bottleneck, objectives);
    for (const [i, o] of objectives.entries()) {
      const b = await passF.gradient(bottleneck, o);
      const scale = Math.max(...Array.from(b.gradients.dataSync(), Math.abs));
      assert.ok(maxAbsDiff(many[i].gradients.dataSync(), b.gradients.dataSync()) <= 1e-6 * scale, `stacked region ${i}`);
      tf.dispose([many[i].activations, many[i].gradients, b.activations, b.gradients]);
    }
    const o = objectiveOf(windowed, regions[3], 2);
    const several = [bottleneck, ...decoder.slice(0, 3)];
    const lw = await passW.gradientLayers(several, o);
    const lf = await passF.gradientLayers(several, o);
    for (let i = 0; i < several.length; i++) {
      const scale = Math.max(...Array.from(lf[i].gradients.dataSync(), Math.abs));
      assert.ok(maxAbsDiff(lw[i].gradients.dataSync(), lf[i].gradients.dataSync()) <= 1e-6 * scale, `gradientLayers ${several[i]}`);
    }
    tf.dispose([...lw, ...lf].flatMap((g) => [g.activations, g.gradients]));
    passW.dispose();
    passF.dispose();
    x.dispose();
    windowed.dispose();
    whole.dispose();
  });

  test('the Explainer: primed first explanations (forward and windowed backward in one run) and pixel regions give the whole-map heatmaps', async () => {
    const { model } = buildUnet(spec);
    const a = new Explainer(await OnnxModelAdapter.create(encodeModel(model), nodeRuntime));
    const b = new Explainer(await OnnxModelAdapter.create(encodeModel(model), nodeRuntime, { windowMaxArea: 0 }));
    const image = randomImage(128, 64, 21);
    const tensors = tf.memory().numTensors;
    for (const request of [
      { region: box(4, 4, 30, 20), classId: 3 },
      { region: pixel(100, 50), classId: 1 },
      { region: box(70, 0, 127, 15), classId: 5 },
    ]) {
      a.release();
      b.release();
      const ea = await a.explain(image, request);
      const eb = await b.explain(image, request);
      assert.ok(
        maxAbsDiff(ea.heatmap, eb.heatmap) <= 1e-5,
        `heatmap for ${JSON.stringify(request.region)}: ${maxAbsDiff(ea.heatmap, eb.heatmap)}`,
      );
      const [wa, wb] = [ea.weights ?? new Float32Array(), eb.weights ?? new Float32Array()];
      assert.ok(wb.length > 0 && maxAbsDiff(wa, wb) <= 1e-6 * Math.max(...Array.from(wb, Math.abs)), 'channel weights');
    }
    a.release();
    b.release();
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
    a.dispose();
    b.dispose();
  });
});
