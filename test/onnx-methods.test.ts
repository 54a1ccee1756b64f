/**
 * CAM's head kernel and the replaced-activation scores (AblationCAM) on the ONNX engine, against the TF.js
 * LayersModel engine on the same weights; replaced-activation scores on the GraphModel engine too.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { regionObjective } from '../src/region/objective.js';
import { box, whole } from '../src/region/region.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { classifierTriple, segmentationTriple } from './helpers/engine-triple.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

test('ONNX CAM (GlobalAveragePool → Flatten → Gemm, transB) equals the LayersModel CAM on the same weights (1e-5)', async () => {
  const { layers, graph, onnx } = await classifierTriple();
  graph.dispose();
  const [el, eo] = [new Explainer(layers), new Explainer(onnx)];
  try {
    const kl = layers.headKernel?.(layers.layers().find((l) => l.name === 'features')!) as tf.Tensor2D;
    const ko = onnx.headKernel?.(onnx.layers().find((l) => l.name === 'features')!) as tf.Tensor2D;
    assert.deepEqual(ko.shape, [4, 3]);
    assert.ok(maxAbsDiff(kl.dataSync(), ko.dataSync()) <= 1e-6, 'head kernels differ');
    tf.dispose([kl, ko]);
    const image = randomImage(6, 6, 3);
    for (const classId of [0, 2]) {
      const a = await el.explain(image, { region: whole(), classId, layer: 'features', method: 'cam' });
      const b = await eo.explain(image, { region: whole(), classId, layer: 'features', method: 'cam' });
      assert.ok(maxAbs(a.cam) > 1e-3, 'a non-trivial CAM');
      assert.ok(maxAbsDiff(a.cam, b.cam) <= 1e-5, `class ${classId}: CAMs differ by ${maxAbsDiff(a.cam, b.cam)}`);
      // CAM = N · Grad-CAM on a GAP + linear head (a closed form independent of the head reading).
      const g = await eo.explain(image, { region: whole(), classId, layer: 'features', method: 'seg-grad-cam' });
      assert.ok(maxAbsDiff(b.heatmap, g.heatmap) <= 1e-5, 'CAM and Grad-CAM heatmaps differ');
    }
  } finally {
    el.dispose();
    eo.dispose();
  }
});

test('ONNX CAM on a segmentation net: a typed "needs a global-average-pooling + linear head" refusal', async () => {
  const { layers, graph, onnx } = await segmentationTriple();
  layers.dispose();
  graph.dispose();
  try {
    assert.throws(
      () => onnx.headKernel?.(onnx.layers().find((l) => l.name === 'c2')!),
      (e: unknown) => e instanceof SegGradCamError && /global-average-pooling \+ linear head/.test(e.message),
    );
  } finally {
    onnx.dispose();
  }
});

test('scoresWithActivations: the cached activation gives the pass score, on the GraphModel and ONNX engines', async () => {
  const t = await segmentationTriple();
  try {
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const objective = regionObjective(
      t.layers.output,
      1,
      Uint8Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
      'logits',
    );
    const ref = await t.layers.forward(x);
    const a = ref.activation('c2') as tf.Tensor4D;
    const zeroed = tf.tidy(() => tf.concat([a, tf.zerosLike(a), tf.mul(a, 2)]) as tf.Tensor4D);
    const want = await ref.scoresWithActivations!('c2', zeroed, objective);
    for (const adapter of [t.graph, t.onnx]) {
      const pass = await adapter.forward(x);
      assert.ok(pass.scoresWithActivations, `${adapter.kind} offers scoresWithActivations`);
      const before = tf.memory().numTensors;
      const got = await pass.scoresWithActivations('c2', zeroed, objective);
      assert.equal(tf.memory().numTensors, before, `${adapter.kind}: no tensor leaks`);
      assert.ok(maxAbsDiff(got, want) <= 1e-4, `${adapter.kind}: ${Array.from(got)} vs ${Array.from(want)}`);
      // Zeroing c2 leaves sum = c1: S then differs from the pass score (the skip is read from the cache).
      assert.ok(Math.abs(got[1] - got[0]) > 1e-3, 'the replacement matters');
      pass.dispose();
    }
    ref.dispose();
    tf.dispose([x, zeroed]);
  } finally {
    t.layers.dispose();
    t.graph.dispose();
    t.onnx.dispose();
  }
});

test('ablation-cam on the parity U-Net: ONNX equals the LayersModel (1e-4)', async () => {
  const { model, params, spec } = buildUnet({ height: 16, width: 32, base: 4, levels: 2, classes: 3, seed: 7 });
  const onnx = new Explainer(await OnnxModelAdapter.create(encodeModel(model), nodeRuntime));
  const layers = new Explainer(new LayersModelAdapter(unetLayersModel(params, spec)));
  try {
    const image = randomImage(32, 16, 9);
    const region = box(4, 2, 20, 12);
    for (const classId of [0, 2]) {
      const o = await onnx.explain(image, { region, classId, layer: onnx.bottleneck, method: 'ablation-cam' });
      const l = await layers.explain(image, { region, classId, layer: layers.bottleneck, method: 'ablation-cam' });
      assert.ok(maxAbs(l.cam) > 1e-2, 'a non-trivial map');
      assert.ok(maxAbsDiff(o.cam, l.cam) <= 1e-4 * Math.max(1, maxAbs(l.cam)), `cams differ by ${maxAbsDiff(o.cam, l.cam)}`);
      assert.ok(maxAbsDiff(o.heatmap, l.heatmap) <= 1e-4, `heatmaps differ by ${maxAbsDiff(o.heatmap, l.heatmap)}`);
    }
  } finally {
    onnx.dispose();
    layers.dispose();
  }
});
