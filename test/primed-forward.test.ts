/**
 * The first explanation of an image takes its gradient during the forward pass (GradientPrime):
 * the part after the layer runs once, under the tape. These tests check it against the plain
 * path (forward, then gradient) on the same model, layer and region. Priming serves models with
 * a layer that has no VJP rule (src/engine/tfjs-layers/backward.ts); the adapters here are told to use
 * the tape, as such a model would.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../src/errors.js';
import { Explainer, type ExplainRequest } from '../src/explain.js';
import { INPUT_LAYER } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { regionObjective } from '../src/region/objective.js';
import { box, classRegion, mask, pixel } from '../src/region/region.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
  assert.ok(maxAbsDiff(a, b) <= 1e-5 * Math.max(maxAbs(b), 1e-6), `${what}: differ by ${maxAbsDiff(a, b)} (max ${maxAbs(b)})`);

test('a primed forward pass gives the gradient of a plain forward + gradient, at the bottleneck, an early layer and the input', async () => {
  const adapter = new LayersModelAdapter(tinyUnet(16, 3, 8), { differentiate: 'tape' });
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const objective = regionObjective(
    adapter.output,
    2,
    Uint8Array.from({ length: 256 }, (_, i) => (i % 7 < 3 ? 1 : 0)),
    'logits',
  );
  for (const layer of ['bottleneck', 'enc1', 'dec1', INPUT_LAYER]) {
    const before = tf.memory().numTensors;
    const plain = await adapter.forward(x);
    const want = await plain.gradient(layer, objective);
    let seen: tf.Tensor | null = null;
    const primed = await adapter.forward(x, {
      layer,
      objectiveOf: (logits) => {
        seen = logits;
        return objective;
      },
    });
    assert.ok(seen, 'objectiveOf was called');
    close(primed.output.dataSync(), plain.output.dataSync(), `${layer}: logits`);
    const got = await primed.gradient(layer, objective);
    assert.equal(got.score, want.score);
    close(got.activations.dataSync(), want.activations.dataSync(), `${layer}: A`);
    close(got.gradients.dataSync(), want.gradients.dataSync(), `${layer}: ∂S/∂A`);
    // Every cached activation of the primed pass is there and equals the plain one.
    for (const l of adapter.layers())
      close(primed.activation(l.name).dataSync(), plain.activation(l.name).dataSync(), `${layer}: cached ${l.name}`);
    // A second call (or another objective) is computed on the cache as usual.
    const again = await primed.gradient(layer, { ...objective });
    close(again.gradients.dataSync(), want.gradients.dataSync(), `${layer}: second call`);
    tf.dispose([want.activations, want.gradients, got.activations, got.gradients, again.activations, again.gradients]);
    plain.dispose();
    primed.dispose();
    assert.equal(tf.memory().numTensors, before, `${layer}: tensors leaked`);
  }
  // An unused primed gradient is freed with its pass.
  const before = tf.memory().numTensors;
  (await adapter.forward(x, { layer: 'enc1', objectiveOf: () => objective })).dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  adapter.dispose();
});

test('the Explainer primes the first explanation only; results equal the cached path for every region form', async () => {
  const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 8), { differentiate: 'tape' }));
  const image = randomImage(24, 20, 5);
  const requests: ExplainRequest[] = [
    { region: pixel(3, 4), classId: 1 },
    { region: box(2, 2, 20, 9), classId: 2, layer: 'enc1' },
    { region: classRegion(), classId: 0, score: 'probability' },
    { region: pixel(10, 11), method: 'grad-cam++' },
  ];
  for (const r of requests) {
    explainer.release();
    const before = tf.memory().numTensors;
    const first = await explainer.explain(image, r); // primed
    const cached = await explainer.explain(image, r); // the pass exists: plain gradient
    explainer.release();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.deepEqual(first.regionMask, cached.regionMask);
    assert.deepEqual(first.prediction.labels, cached.prediction.labels);
    assert.equal(first.classIndex, cached.classIndex);
    close(first.heatmap, cached.heatmap, `heatmap ${JSON.stringify(r.region)}`);
    if (first.weights && cached.weights) close(first.weights, cached.weights, 'α');
  }
  explainer.dispose();
});

test('a bad region found during the primed forward pass is the usual typed error, and nothing leaks', async () => {
  const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 8), { differentiate: 'tape' }));
  const image = randomImage(16, 16, 6);
  const before = tf.memory().numTensors;
  await assert.rejects(
    explainer.explain(image, { region: mask(16, 16, new Uint8Array(256)), classId: 1 }),
    (err: unknown) => err instanceof SegGradCamError && /empty/.test((err as Error).message),
  );
  assert.equal(tf.memory().numTensors, before);
  // The explainer still works afterwards.
  const e = await explainer.explain(image, { region: pixel(1, 1), classId: 1 });
  assert.equal(e.heatmap.length, 256);
  explainer.dispose();
});
