/**
 * Concurrent calls on one Explainer: one in-flight forward pass per image shared by every call
 * for it, a replaced pass freed only when no call still uses it, and every result equal to the
 * one the same call gives alone — on a LayersModel, a GraphModel and an ONNX model.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer, type Explanation, type ExplainRequest } from '../src/explain.js';
import type { ModelAdapter } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter, type OrtRuntime } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import type { RgbaImage } from '../src/image.js';
import { box, classRegion, object, pixel, whole } from '../src/region/region.js';
import { GraphBuilder, convAttrs, fusedAttrs, poolAttrs } from './helpers/graph-builder.js';
import { randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

/** One call of a round: which image, and what is asked of it. */
type Call = { image: number; run: (e: Explainer, image: RgbaImage) => Promise<Explanation[]> };

/** 8 calls on 4 images (each image twice), spread over explain, explainMany and explainLayers, with and without priming. */
function callsFor(layers: string[], w: number, h: number): Call[] {
  const [a, b] = layers;
  const one = (r: ExplainRequest) => (e: Explainer, image: RgbaImage) => e.explain(image, r).then((x) => [x]);
  return [
    { image: 0, run: one({ region: pixel(w >> 1, h >> 1), classId: 1 }) },
    { image: 1, run: one({ region: object(w >> 2, h >> 2), layer: b }) },
    {
      image: 2,
      run: (e, im) =>
        e.explainMany(im, [
          { region: pixel(1, 1), classId: 0 },
          { region: box(0, 0, w >> 1, h >> 1), classId: 2 },
        ]),
    },
    { image: 3, run: (e, im) => e.explainLayers(im, { region: pixel(w - 2, h - 2), classId: 1 }, [a, b]) },
    { image: 0, run: one({ region: box(1, 1, w >> 1, h - 2), classId: 2, layer: b, method: 'hires-cam' }) },
    { image: 1, run: one({ region: whole(), method: 'saliency' }) },
    { image: 2, run: one({ region: pixel(2, h - 3), layer: a, augment: true }) },
    { image: 3, run: one({ region: object(3, 3), classId: 1, truncate: true }) },
  ];
}

/** The fields of an explanation that are numbers or labels (what must not depend on concurrency). */
function digest(e: Explanation) {
  return {
    layer: e.layer.name,
    method: e.method,
    classIndex: e.classIndex,
    scoreValue: e.scoreValue,
    cam: Array.from(e.cam),
    weights: e.weights ? Array.from(e.weights) : null,
    heatmap: Array.from(e.heatmap),
    empty: e.empty,
    camMax: e.camMax,
    regionMask: Array.from(e.regionMask),
    labels: Array.from(e.prediction.labels),
  };
}

/**
 * `rounds` rounds of the 8 calls started together on one Explainer, against each call alone on
 * a fresh Explainer (its own forward pass: nothing shared). Tensors must come back to their
 * count before the rounds once the Explainer releases its cache, and be flat from round to
 * round; RSS must grow by less than `rssBoundMb`.
 */
async function soak(make: () => Promise<ModelAdapter>, rounds: number, rssBoundMb: number, size: [number, number]) {
  const [w, h] = size;
  const images = [0, 1, 2, 3].map((i) => randomImage(w, h, 100 + i));
  const shared = new Explainer(await make());
  const layerNames = shared.layers().map((l) => l.name);
  const layers = [shared.bottleneck, layerNames.find((n) => n !== shared.bottleneck) as string];
  const calls = callsFor(layers, w, h);

  const expected: ReturnType<typeof digest>[][] = [];
  for (const c of calls) {
    const alone = new Explainer(await make());
    expected.push((await c.run(alone, images[c.image])).map(digest));
    alone.dispose();
  }

  const round = async () => {
    const results = await Promise.all(calls.map((c) => c.run(shared, images[c.image])));
    results.forEach((r, k) => assert.deepEqual(r.map(digest), expected[k], `call ${k}`));
  };
  await round(); // warm-up: compiled sessions, kernels, caches
  shared.release();
  const before = tf.memory().numTensors;
  const rssBefore = process.memoryUsage().rss;
  let afterFirst = 0;
  for (let i = 0; i < rounds; i++) {
    await round();
    if (i === 0) afterFirst = tf.memory().numTensors;
    else assert.equal(tf.memory().numTensors, afterFirst, `tensors after round ${i + 1}`);
  }
  const rssGrowth = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  shared.release();
  assert.equal(tf.memory().numTensors, before, 'tensors once the Explainer released its cache');
  assert.ok(rssGrowth < rssBoundMb, `RSS grew by ${rssGrowth.toFixed(0)} MB over ${rounds} rounds (bound ${rssBoundMb} MB)`);
  shared.dispose();
}

/** A small U-Net-like TF graph: fused conv + ReLU, max pool, conv, nearest upsampling, concat with the skip, 1x1 conv logits. */
async function tinyGraph() {
  const g = new GraphBuilder();
  const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 0.4, 'float32', seed);
  g.input('x', [1, 16, 16, 3]);
  g.op('enc', '_FusedConv2D', ['x', g.weight('enc/w', rnd([3, 3, 3, 4], 1)), g.weight('enc/b', rnd([4], 2))], {
    ...convAttrs(1, 'SAME'),
    ...fusedAttrs('BiasAdd', 'Relu'),
  });
  g.op('pool', 'MaxPool', ['enc'], poolAttrs(2, 'VALID'));
  g.op('mid', '_FusedConv2D', ['pool', g.weight('mid/w', rnd([3, 3, 4, 6], 3)), g.weight('mid/b', rnd([6], 4))], {
    ...convAttrs(1, 'SAME'),
    ...fusedAttrs('BiasAdd', 'Relu'),
  });
  g.op('up', 'ResizeNearestNeighbor', ['mid', g.constant('up/size', [16, 16], [2], 'int32')], {
    align_corners: { b: false },
    half_pixel_centers: { b: false },
  });
  g.op('cat', 'ConcatV2', ['up', 'enc', g.constant('cat/axis', [3], [], 'int32')], { N: { i: '2' }, Tidx: { type: 'DT_INT32' } });
  g.op('out', '_FusedConv2D', ['cat', g.weight('out/w', rnd([1, 1, 10, 3], 5)), g.weight('out/b', rnd([3], 6))], {
    ...convAttrs(1, 'SAME'),
    ...fusedAttrs('BiasAdd'),
  });
  return g.load();
}

const onnxBytes = readFileSync(new URL('../fixtures/onnx/unet-small.onnx', import.meta.url));

describe('8 concurrent calls on 4 images', () => {
  test('LayersModel: 100 rounds, tensors flat, RSS bounded, results as alone', async () => {
    await soak(async () => new LayersModelAdapter(tinyUnet(16, 3, 7)), 100, 64, [16, 16]);
  });

  test('GraphModel: 40 rounds, tensors flat, RSS bounded, results as alone', async () => {
    await soak(tinyGraph, 40, 64, [16, 16]);
  });

  test('ONNX (torch-exported U-Net): 20 rounds, tensors flat, RSS bounded, results as alone', async () => {
    await soak(() => OnnxModelAdapter.create(onnxBytes, nodeRuntime), 20, 128, [64, 32]);
  });
});

test("a call sharing a pass whose primed forward failed on the starter's region runs its own", async () => {
  // 'tape' gradients prime the forward pass: the starter's region is read from the logits during it.
  const make = () => new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 7), { differentiate: 'tape' }));
  const image = randomImage(16, 16, 9);
  const alone = make();
  const labels = (await alone.predict(image)).labels;
  const absent = [0, 1, 2].find((c) => !labels.includes(c));
  assert.ok(absent !== undefined, 'the image leaves one class unpredicted');
  const present = labels[0];
  alone.release();
  const requestB: ExplainRequest = { region: object(0, 0), classId: present };
  const expected = digest(await alone.explain(image, requestB));
  alone.dispose();

  const explainer = make();
  const before = tf.memory().numTensors;
  const [a, b] = await Promise.allSettled([
    explainer.explain(image, { region: classRegion(), classId: absent }),
    explainer.explain(image, requestB),
  ]);
  assert.equal(a.status, 'rejected', 'A: its class is absent from the prediction');
  assert.equal(b.status, 'fulfilled', `B: ${b.status === 'rejected' ? String(b.reason) : ''}`);
  assert.deepEqual(digest((b as PromiseFulfilledResult<Explanation>).value), expected);
  explainer.release();
  assert.equal(tf.memory().numTensors, before, 'tensors');
  explainer.dispose();
});

test('ONNX: concurrent first uses create each session once (no session made and dropped unreleased)', async () => {
  const sessionsFor = async (concurrent: boolean) => {
    let created = 0;
    const runtime: OrtRuntime = {
      ...nodeRuntime,
      InferenceSession: { create: (model, options) => (created++, nodeRuntime.InferenceSession.create(model, options)) },
    };
    const explainer = new Explainer(await OnnxModelAdapter.create(onnxBytes, runtime));
    const layer = explainer.layers()[2].name;
    const images = [0, 1, 2, 3].map((i) => randomImage(64, 32, 40 + i));
    const calls = images.flatMap((image) => [
      () => explainer.explain(image, { region: pixel(10, 10), classId: 1 }),
      () => explainer.explain(image, { region: box(1, 1, 30, 20), classId: 2, layer }),
      () => explainer.explain(image, { region: object(50, 20), layer, method: 'integrated-gradients', methodOptions: { steps: 2 } }),
    ]);
    if (concurrent) await Promise.all(calls.map((c) => c()));
    else for (const c of calls) await c();
    explainer.dispose();
    return created;
  };
  const [sequential, concurrent] = [await sessionsFor(false), await sessionsFor(true)];
  assert.equal(concurrent, sequential, `${concurrent} sessions created concurrently, ${sequential} one call at a time`);
});

describe('ONNX: a long method on image A while image B starts', () => {
  let explainer: Explainer;
  after(() => explainer?.dispose());

  for (const method of ['score-cam', 'integrated-gradients'] as const) {
    test(`${method} on A, explain(B) started during it: 16 of 16 succeed, equal to alone`, async () => {
      const [A, B] = [randomImage(64, 32, 21), randomImage(64, 32, 22)];
      const requestA: ExplainRequest = { region: box(10, 6, 30, 20), classId: 2, method, methodOptions: { steps: 8, maxChannels: 16 } };
      const requestB: ExplainRequest = { region: pixel(40, 12), classId: 1 };
      const alone = new Explainer(await OnnxModelAdapter.create(onnxBytes, nodeRuntime));
      const [expectedA, expectedB] = [digest(await alone.explain(A, requestA)), digest(await alone.explain(B, requestB))];
      alone.dispose();

      // B starts at A's first model call after its forward pass: A's pass is then in use.
      const adapter = await OnnxModelAdapter.create(onnxBytes, nodeRuntime);
      explainer = new Explainer(adapter);
      let startB: (() => void) | null = null;
      for (const name of ['scores', 'inputGradients'] as const) {
        const original = adapter[name].bind(adapter) as (...args: unknown[]) => Promise<unknown>;
        (adapter as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
          startB?.();
          startB = null;
          return original(...args);
        };
      }
      let failures = 0;
      for (let trial = 0; trial < 16; trial++) {
        explainer.release();
        let b: Promise<Explanation> | null = null;
        startB = () => {
          b = explainer.explain(B, requestB);
          b.catch(() => undefined); // awaited below, after A
        };
        const [ra] = await Promise.allSettled([explainer.explain(A, requestA)]);
        const [rb] = await Promise.allSettled([b ?? Promise.reject(new Error('B did not start'))]);
        if (ra.status === 'rejected' || rb.status === 'rejected') {
          failures++;
          continue;
        }
        assert.deepEqual(digest(ra.value), expectedA, `trial ${trial}: A`);
        assert.deepEqual(digest(rb.value), expectedB, `trial ${trial}: B`);
      }
      assert.equal(failures, 0, `${failures} of 16 trials failed`);
    });
  }
});
