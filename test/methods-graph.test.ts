import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../src/errors.js';
import { Explainer } from '../src/explain.js';
import { methodNames } from '../src/methods/index.js';
import { GraphModelAdapter } from '../src/engine/tfjs-graph/adapter.js';
import { loadModelFile } from '../src/engine/tfjs/load-node.js';
import { regionObjective } from '../src/region/objective.js';
import { box } from '../src/region/region.js';
import { maxAbs, randomImage, useCpu } from './helpers/setup.js';

// The MediaPipe selfie GraphModel: its signature fixes the batch to 1, and it is a binary model.
let adapter: GraphModelAdapter;

before(async () => {
  await useCpu();
  adapter = (await loadModelFile('models/selfie/selfie.json')) as GraphModelAdapter;
});

const patch = () => {
  const mask = new Uint8Array(256 * 256);
  for (let y = 100; y < 116; y++) for (let x = 120; x < 136; x++) mask[y * 256 + x] = 1;
  return mask;
};

describe('GraphModel batched calls and the input gradient (selfie)', () => {
  test('a batch of 2 on a batch-1 graph: scores per image as execute() gives them', async () => {
    assert.equal(adapter.maxBatch, 1);
    const objective = regionObjective(adapter.output, 1, patch(), 'logits');
    const xs = tf.randomUniform([2, 256, 256, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const scores = await adapter.scores(xs, objective);
    const w = tf.tensor(objective.weights, [1, 256, 256, 1]);
    for (let b = 0; b < 2; b++) {
      const want = tf.tidy(() => {
        const y = adapter.model.execute({ input_1: xs.slice([b, 0, 0, 0], [1, -1, -1, -1]) }, 'segment_add') as tf.Tensor;
        return tf.sum(tf.mul(y, w)).dataSync()[0];
      });
      assert.ok(Math.abs(scores[b] - want) < 1e-3 * Math.max(1, Math.abs(want)), `${scores[b]} vs ${want}`);
    }
    tf.dispose([xs, w]);
  });

  test("∂S/∂x at 'input' matches central differences at single pixels", async () => {
    // Single-pixel directions: along a random direction over the whole image the map is far
    // from linear at any usable ε (hard-swish, ReLU6), so a global check would test nothing.
    const objective = regionObjective(adapter.output, 1, patch(), 'logits');
    const x = tf.randomUniform([1, 256, 256, 3], 0.2, 0.8, 'float32', 5) as tf.Tensor4D;
    const pass = await adapter.forward(x);
    const { activations, gradients } = await pass.gradient('input', objective);
    assert.deepEqual(activations.shape, [1, 256, 256, 3]);
    const eps = 1e-2;
    const w = tf.tensor(objective.weights, [1, 256, 256, 1]);
    const logits = (t: tf.Tensor) => adapter.model.execute({ input_1: t }, 'segment_add') as tf.Tensor;
    const checks: Array<[number, number, number]> = [];
    for (const [py, px, c] of [
      [108, 128, 0],
      [108, 140, 1],
      [104, 124, 2],
      [60, 60, 0],
    ] as const) {
      const [g, fd] = tf.tidy(() => {
        const d = tf.buffer([1, 256, 256, 3]);
        d.set(eps, 0, py, px, c);
        const step = d.toTensor();
        // Outputs subtracted pixel by pixel before summing, so float32 rounding of S cancels.
        const diff = tf.sub(logits(x.add(step)), logits(x.sub(step)));
        return [gradients.bufferSync().get(0, py, px, c), tf.sum(tf.mul(diff, w)).dataSync()[0] / (2 * eps)];
      });
      checks.push([g, fd, Math.abs(g)]);
    }
    const scale = Math.max(...checks.map((c) => c[2]));
    assert.ok(scale > 1, 'the check needs a non-trivial gradient');
    for (const [g, fd] of checks) assert.ok(Math.abs(g - fd) < 5e-2 * scale, `${g} vs ${fd} (scale ${scale})`);
    tf.dispose([x, activations, gradients, w]);
    pass.dispose();
  });
});

describe('every method on the selfie GraphModel', () => {
  test('runs, leaves no tensor behind; CAM refuses with a typed error (no global-average-pooling head)', async () => {
    const explainer = new Explainer(adapter);
    const image = randomImage(64, 64, 2);
    await explainer.predict(image);
    const options = { samples: 2, steps: 2, iterations: 2, maxChannels: 2, batchSize: 2, maskResolution: 8, window: 128 };
    const layer = 'add_4__xeno_compat__1';
    for (const method of methodNames()) {
      const before = tf.memory().numTensors;
      const request = { region: box(20, 20, 40, 40), classId: 1, layer, method, methodOptions: options };
      if (method === 'cam') {
        await assert.rejects(
          explainer.explain(image, request),
          (err: unknown) => err instanceof SegGradCamError && err.code === 'model' && /global-average-pooling/.test(err.message),
        );
      } else {
        const e = await explainer.explain(image, request);
        assert.ok(e.heatmap.every(Number.isFinite), method);
        assert.equal(e.heatmap.length, 64 * 64);
        assert.ok(e.camMax > 0 || e.empty, method);
        if (method === 'saliency') assert.ok(maxAbs(e.cam) > 0, 'the input gradient is not zero');
      }
      assert.equal(tf.memory().numTensors, before, method);
    }
    const before = tf.memory().numTensors;
    const e = await explainer.explain(image, { region: box(20, 20, 40, 40), classId: 1, layer, augment: true, truncate: true });
    assert.equal(e.augmentations, 4);
    assert.ok(e.receptiveField);
    assert.equal(tf.memory().numTensors, before);
    explainer.release();
  });
});
