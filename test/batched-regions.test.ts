import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer, type ExplainRequest } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { box, classRegion, pixel, whole } from '../src/region/region.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const requests: ExplainRequest[] = [
  { region: pixel(3, 4), classId: 1 },
  { region: box(2, 2, 12, 9), classId: 2 },
  { region: whole(), classId: 0, score: 'probability' },
  { region: pixel(10, 11), classId: 2, layer: 'enc1' },
  { region: box(0, 0, 15, 3), classId: 1, method: 'hires-cam' },
  { region: pixel(5, 5), classId: 1, method: 'saliency' },
];

test('K regions in one batched backward pass equal K single explanations', async () => {
  const model = tinyUnet(16, 3, 8);
  const explainer = new Explainer(new LayersModelAdapter(model));
  const image = randomImage(16, 16, 4);
  const singles = [];
  for (const r of requests) singles.push(await explainer.explain(image, r));
  const before = tf.memory().numTensors;
  const batched = await explainer.explainMany(image, [...requests, { region: classRegion(), classId: singles[0].prediction.labels[0] }]);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(batched.length, requests.length + 1);
  for (const [i, single] of singles.entries()) {
    const b = batched[i];
    assert.equal(b.method, single.method);
    assert.equal(b.layer.name, single.layer.name);
    assert.ok(Math.abs(b.scoreValue - single.scoreValue) <= 1e-5 * Math.max(1, Math.abs(single.scoreValue)), `score ${i}`);
    if (single.weights && b.weights)
      assert.ok(maxAbsDiff(b.weights, single.weights) <= 1e-5 * Math.max(maxAbs(single.weights), 1e-6), `α ${i}`);
    assert.ok(maxAbsDiff(b.heatmap, single.heatmap) < 1e-4, `heatmap ${i}`);
    assert.deepEqual(b.regionMask, single.regionMask);
  }
  explainer.dispose();
});

test('many layers in one backward pass (explainLayers) equal one explanation per layer; the tape adapter falls back to per-layer calls', async () => {
  for (const differentiate of ['vjp', 'tape'] as const) {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 8), { differentiate }));
    const image = randomImage(20, 18, 9);
    const layers = ['enc1', 'pool1', 'bottleneck', 'up1', 'concat1', 'dec1', 'input'];
    for (const request of [
      { region: box(3, 2, 12, 9), classId: 2 },
      { region: pixel(4, 5), classId: 1, score: 'probability', method: 'grad-cam++' },
    ] as ExplainRequest[]) {
      const singles = [];
      for (const layer of layers) singles.push(await explainer.explain(image, { ...request, layer }));
      const before = tf.memory().numTensors;
      const all = await explainer.explainLayers(image, request, layers);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.deepEqual(
        all.map((e) => e.layer.name),
        layers,
      );
      for (const [i, single] of singles.entries()) {
        const e = all[i];
        assert.equal(e.method, single.method);
        assert.ok(Math.abs(e.scoreValue - single.scoreValue) <= 1e-5 * Math.max(1, Math.abs(single.scoreValue)), 'score');
        if (single.weights && e.weights)
          assert.ok(
            maxAbsDiff(e.weights, single.weights) <= 1e-5 * Math.max(maxAbs(single.weights), 1e-6),
            `${differentiate} α ${layers[i]}`,
          );
        assert.ok(maxAbsDiff(e.heatmap, single.heatmap) < 1e-4, `${differentiate} heatmap ${layers[i]}`);
      }
    }
    explainer.dispose();
  }
});
