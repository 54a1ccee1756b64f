/**
 * ONNX and TF.js give the same heatmap for the same weights: the project's U-Net
 * (scripts/onnx/unet.ts) written as ONNX and built with the TF.js layers API from the same
 * numbers (scripts/onnx/unet-tfjs.ts), explained through the two adapters.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { box, pixel } from '../src/region/region.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

let onnx: Explainer;
let tfjs: Explainer;
after(() => {
  onnx?.dispose();
  tfjs?.dispose();
});

/** ONNX node outputs (a block's Relu outputs) ↔ TF.js layers (convs with the ReLU fused). */
const LAYERS: Array<[string, string, string]> = [
  ['bottleneck', 'bottleneck_relu2', 'bottleneck_conv2'],
  ['encoder, half resolution', 'enc2_relu2', 'enc2_conv2'],
  ['decoder, half resolution', 'dec2_relu1', 'dec2_conv1'],
];

test('ONNX and TF.js U-Nets from the same numbers give the same explanations (1e-4)', async (t) => {
  const { model, params, spec } = buildUnet({ height: 32, width: 64, base: 4, levels: 3, classes: 5, seed: 11 });
  onnx = new Explainer(await OnnxModelAdapter.create(encodeModel(model), nodeRuntime));
  tfjs = new Explainer(new LayersModelAdapter(unetLayersModel(params, spec)));
  assert.equal(onnx.bottleneck, 'bottleneck_relu2');
  assert.equal(tfjs.bottleneck, 'bottleneck_conv2');
  const shapeOf = (e: Explainer, name: string) => e.layers().find((l) => l.name === name)?.outputShape;
  for (const [, o, l] of LAYERS) assert.deepEqual(shapeOf(onnx, o), shapeOf(tfjs, l), `${o} / ${l}`);

  const image = randomImage(64, 32, 5);
  const tensors = tf.memory().numTensors;
  const [po, pt] = [await onnx.predict(image), await tfjs.predict(image)];
  const same = po.labels.filter((c, i) => c === pt.labels[i]).length;
  assert.ok(same >= 0.999 * po.labels.length, `labels agree on ${same} of ${po.labels.length} pixels`);

  let worst = [0, 0];
  for (const region of [box(10, 6, 30, 20), pixel(40, 12)]) {
    for (const [what, o, l] of LAYERS) {
      const label = `${what}, ${region.kind}`;
      const [eo, et] = [
        await onnx.explain(image, { region, classId: 2, layer: o }),
        await tfjs.explain(image, { region, classId: 2, layer: l }),
      ];
      assert.ok(!eo.empty && !et.empty, `${label}: empty heatmap`);
      const dHeat = maxAbsDiff(eo.heatmap, et.heatmap);
      assert.ok(dHeat <= 1e-4, `${label}: heatmaps differ by ${dHeat}`);
      const [wo, wt] = [eo.weights as Float32Array, et.weights as Float32Array];
      const dWeights = maxAbsDiff(wo, wt) / maxAbs(wt);
      assert.ok(dWeights <= 1e-4, `${label}: weights differ by ${dWeights} of their max`);
      worst = [Math.max(worst[0], dHeat), Math.max(worst[1], dWeights)];
    }
  }
  t.diagnostic(
    `labels agree on ${same}/${po.labels.length}; max |Δheatmap| ${worst[0].toExponential(2)}, max |Δα|/max|α| ${worst[1].toExponential(2)}`,
  );
  onnx.release();
  tfjs.release();
  assert.equal(tf.memory().numTensors, tensors, 'tensors left after the explanations');
});
