import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { regionObjective } from '../src/region/objective.js';
import { box, pixel, whole } from '../src/region/region.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import * as ref from './helpers/reference-net.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

describe('LayersModel executor', () => {
  test('with no replacement it reproduces model.predict to the last bit', () => {
    const model = tinyUnet(16, 3, 4);
    const adapter = new LayersModelAdapter(model);
    const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const expected = model.predict(x) as tf.Tensor;
    const ours = adapter.runGraph(x, false);
    assert.deepEqual(Array.from(ours.dataSync()), Array.from(expected.dataSync()));
    tf.dispose([x, expected, ours]);
    model.dispose();
  });

  test('a final softmax is skipped so scores are logits', () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const out = tf.layers
      .conv2d({ filters: 3, kernelSize: 1, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) })
      .apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const adapter = new LayersModelAdapter(model);
    assert.equal(adapter.output.activation, 'softmax');
    const x = tf.randomUniform([1, 4, 4, 2], 0, 1, 'float32', 1) as tf.Tensor4D;
    const logits = adapter.runGraph(x, true);
    const [k, b] = model.layers[1].getWeights();
    const expected = tf.add(tf.conv2d(x, k as tf.Tensor4D, 1, 'same'), b);
    assert.ok(maxAbsDiff(logits.dataSync(), expected.dataSync()) < 1e-6);
    // model.predict still returns probabilities: the layer's activation was restored.
    const probs = model.predict(x) as tf.Tensor;
    assert.ok(Math.abs(tf.sum(probs, -1).dataSync()[0] - 1) < 1e-5);
    tf.dispose([x, logits, expected, probs]);
    model.dispose();
  });
});

/** α by central finite differences of the float64 reference network (no TF.js involved). */
function finiteDifferenceAlpha(
  model: tf.LayersModel,
  x: Float64Array,
  size: number,
  layer: 'bottleneck' | 'enc1',
  weights: Float32Array,
): number[] {
  const p = (name: string) =>
    model
      .getLayer(name)
      .getWeights()
      .map((t) => t.dataSync());
  const [k1, b1] = p('enc1');
  const [kb, bb] = p('bottleneck');
  const [ku, bu] = p('up1');
  const [kd, bd] = p('dec1');
  const [kl, bl] = p('logits');
  const input = ref.map3(size, size, 3, x);
  const enc1 = ref.relu(ref.conv2dSame(input, k1, 3, 3, 4, b1));
  const bott = ref.relu(ref.conv2dSame(ref.maxPool2(enc1), kb, 3, 3, 6, bb));
  // S with the layer's output replaced by `a`; every activation not downstream of it stays fixed.
  const S = (a: ref.Map3): number => {
    const e = layer === 'enc1' ? a : enc1;
    const b = layer === 'bottleneck' ? a : ref.relu(ref.conv2dSame(ref.maxPool2(e), kb, 3, 3, 6, bb));
    const u = ref.convTranspose2x2(b, ku, 4, bu);
    const d = ref.relu(ref.conv2dSame(ref.concat(u, e), kd, 3, 3, 4, bd));
    return ref.dot(ref.conv2dSame(d, kl, 1, 1, 3, bl).data, weights);
  };
  const a0 = layer === 'enc1' ? enc1 : bott;
  const eps = 1e-5;
  const alpha: number[] = [];
  for (let c = 0; c < a0.c; c++) {
    const shifted = (sign: number) => ({ ...a0, data: a0.data.map((v, i) => (i % a0.c === c ? v + sign * eps : v)) });
    alpha.push((S(shifted(1)) - S(shifted(-1))) / (2 * eps) / (a0.h * a0.w));
  }
  return alpha;
}

describe('Seg-Grad-CAM α against finite differences', () => {
  for (const layer of ['bottleneck', 'enc1'] as const) {
    test(`U-Net at ${layer} (through the skip and the pooling path)`, async () => {
      const size = 16;
      const model = tinyUnet(size, 3, 11);
      const explainer = new Explainer(new LayersModelAdapter(model));
      const image = randomImage(size, size, 5);
      const region = box(3, 4, 9, 12);
      const e = await explainer.explain(image, { region, layer, classId: 1 });
      assert.ok(e.weights);
      // The input as the explainer sees it (float32 0..1), then float64 from there on.
      const x = Float64Array.from(
        Float32Array.from({ length: size * size * 3 }, (_, i) => image.data[Math.floor(i / 3) * 4 + (i % 3)] / 255),
      );
      const objective = regionObjective(explainer.adapter.output, 1, e.regionMask, 'logits');
      const fd = finiteDifferenceAlpha(model, x, size, layer, objective.weights);
      const scale = Math.max(maxAbs(fd), 1e-6);
      const diff = maxAbsDiff(e.weights, fd);
      assert.ok(maxAbs(fd) > 1e-4, 'the check needs non-trivial gradients');
      assert.ok(diff / scale < 1e-4, `α differs from finite differences by ${diff} (scale ${scale}): ${Array.from(e.weights)} vs ${fd}`);
      explainer.dispose();
    });
  }
});

describe('memory', () => {
  test('tf.memory().numTensors is unchanged after explanations', async () => {
    const model = tinyUnet(16, 3, 2);
    const explainer = new Explainer(new LayersModelAdapter(model));
    const image = randomImage(16, 16, 3);
    const before = tf.memory().numTensors;
    await explainer.explain(image, { region: pixel(2, 3) });
    await explainer.explain(image, { region: whole(), layer: 'enc1', score: 'probability', classId: 2 });
    explainer.release();
    assert.equal(tf.memory().numTensors, before);
    explainer.dispose();
  });
});
