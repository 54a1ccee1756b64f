/**
 * The ONNX adapter on U-Nets: the project's own (scripts/onnx/unet.ts, generated from a seed)
 * and a torch.onnx.export of the same architecture (fixtures/onnx/unet-small.onnx).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer, type Explanation } from '../src/explain.js';
import { INPUT_LAYER, type Objective } from '../src/engine/contract.js';
import { SegGradCamError } from '../src/errors.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { ACTIVATION, GRADIENT, COTANGENT } from '../src/engine/onnx/gradient.js';
import { nchwToNhwc, nhwcToNchw } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { regionObjective } from '../src/region/objective.js';
import { box, pixel, whole } from '../src/region/region.js';
import { finiteDifferences, findTorch, gaussian, runTorchReference, session, uniform } from '../scripts/onnx/reference.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

const SMALL = { height: 32, width: 64, base: 4, seed: 3 };

async function adapterFor(model: ReturnType<typeof buildUnet>['model'], options = {}) {
  return OnnxModelAdapter.create(encodeModel(model), nodeRuntime, options);
}

function inputOf(ad: OnnxModelAdapter, seed: number): { nchw: Float32Array; x: tf.Tensor4D } {
  const [, c, h, w] = ad.inputDims;
  const nchw = uniform(c * h * w, seed, 0, 1);
  return { nchw, x: tf.tensor4d(nchwToNhwc(nchw, 1, c, h, w), [1, h, w, c]) };
}

/** A box region on class 2 as an objective over the logits. */
function boxObjective(
  ad: OnnxModelAdapter,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  cls: number,
  on: Objective['on'] = 'logits',
): Objective {
  const { height, width } = ad.output;
  const mask = new Uint8Array(height * width);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) mask[y * width + x] = 1;
  return regionObjective(ad.output, cls, mask, on);
}

const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / Math.max(scale, 1e-12);
};

/**
 * Central differences with ε = 1e-3; an element whose ±ε step crosses a kink (a ReLU or
 * max-pool switch) is re-measured with ε = 1e-4 (at most a quarter of them).
 * The noise floor is estimated from the weighted logits: 3·1e-6·‖w·y‖₂ / 2ε.
 */
async function compareWithDifferences(
  ad: OnnxModelAdapter,
  t: string,
  nchw: Float32Array,
  cot: Float32Array,
  logits: Float32Array,
  weights: Float32Array,
  ours: Float32Array,
  idx: number[],
  label: string,
) {
  let sq = 0;
  for (let j = 0; j < logits.length; j++) sq += (weights[j] * logits[j]) ** 2;
  const noise = (eps: number) => (3e-6 * Math.sqrt(sq)) / (2 * eps);
  const fd = await finiteDifferences(ad.analysis, t, ad.logitsName, nchw, cot, idx, 1e-3);
  let scale = 0;
  for (const v of fd) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 10 * noise(1e-3), `${label}: gradients (${scale}) too small against float32 noise (${noise(1e-3)})`);
  const bad = idx.map((i, k) => k).filter((k) => Math.abs(ours[idx[k]] - fd[k]) > 3e-3 * scale + noise(1e-3));
  const fine =
    bad.length > 0
      ? await finiteDifferences(
          ad.analysis,
          t,
          ad.logitsName,
          nchw,
          cot,
          bad.map((k) => idx[k]),
          1e-4,
        )
      : [];
  bad.forEach((k, j) => {
    const d = Math.abs(ours[idx[k]] - fine[j]);
    assert.ok(
      d <= 3e-3 * scale + noise(1e-4),
      `${label}[${idx[k]}]: ours ${ours[idx[k]]}, differences ${fd[k]} (ε 1e-3), ${fine[j]} (ε 1e-4); scale ${scale}`,
    );
  });
  assert.ok(bad.length <= idx.length / 4, `${label}: ${bad.length} of ${idx.length} elements needed the smaller step`);
}

describe('U-Net gradients against finite differences', () => {
  const cases: Array<[string, () => Promise<OnnxModelAdapter>]> = [
    ['project U-Net (seeded, 32x64, base 4)', () => adapterFor(buildUnet(SMALL).model)],
    [
      'torch.onnx.export U-Net (fixtures/onnx/unet-small.onnx)',
      () => OnnxModelAdapter.create(readFileSync(new URL('../fixtures/onnx/unet-small.onnx', import.meta.url)), nodeRuntime),
    ],
  ];
  for (const [name, make] of cases) {
    test(name, async () => {
      const ad = await make();
      const layers = ad.layers();
      const bottleneck = new Explainer(ad).bottleneck;
      const enc1 = layers[1].name;
      assert.deepEqual(layers.find((l) => l.name === bottleneck)?.outputShape, [1, 2, 4, 64]);
      const { nchw, x } = inputOf(ad, 5);
      const pass = await ad.forward(x);
      const obj = boxObjective(ad, 12, 8, 28, 20, 2);
      const cot = ad.cotangentNchw(obj.weights);
      for (const layer of [bottleneck, enc1, INPUT_LAYER]) {
        const t = ad.resolve(layer);
        const g = await pass.gradient(layer, obj);
        const d = ad.analysis.shape(t);
        const ours = nhwcToNchw(g.gradients.dataSync(), 1, d[2], d[3], d[1]);
        tf.dispose([g.activations, g.gradients]);
        // 64 elements spread over the tensor, away from zero: a ReLU output's exact zeros tie in
        // max-pool windows, where the derivative does not exist and differences measure half of it.
        const a = nhwcToNchw(pass.activation(layer).dataSync(), 1, d[2], d[3], d[1]);
        const live = Array.from({ length: a.length }, (_, i) => i).filter((i) => Math.abs(a[i]) > 1e-3);
        const idx = Array.from({ length: 64 }, (_, i) => live[Math.floor(((i + 0.5) * live.length) / 64)]);
        await compareWithDifferences(ad, t, nchw, cot, pass.logitsData, obj.weights, ours, idx, layer);
      }
      x.dispose();
      pass.dispose();
      ad.dispose();
    });
  }
});

describe('the augmented graph', () => {
  test("ONNX Runtime's forward output of the augmented graph equals the original model's (128x256 U-Net)", async () => {
    const { model } = buildUnet();
    const ad = await adapterFor(model);
    const bottleneck = new Explainer(ad).bottleneck;
    const gg = ad.gradientGraph(bottleneck);
    const orig = await session(model);
    const aug = await session(gg.model);
    const [, c, h, w] = ad.inputDims;
    const x = new (await import('onnxruntime-node')).Tensor('float32', uniform(c * h * w, 9, 0, 1), [1, c, h, w]);
    const ort = await import('onnxruntime-node');
    const cot = new ort.Tensor('float32', gaussian(8 * h * w, 4), [1, 8, h, w]);
    const a = await orig.run({ input: x });
    const b = await aug.run({ input: x, [COTANGENT]: cot });
    const ya = a.logits.data as Float32Array;
    const yb = b.logits.data as Float32Array;
    assert.equal(ya.length, yb.length);
    assert.ok(
      maxAbsDiff(ya, yb) <= 1e-5 * Math.max(1, ...Array.from(ya.subarray(0, 1000), Math.abs)),
      `max difference ${maxAbsDiff(ya, yb)}`,
    );
    assert.deepEqual(b[ACTIVATION].dims, [1, 256, 8, 16]);
    assert.deepEqual(b[GRADIENT].dims, [1, 256, 8, 16]);
    assert.ok(gg.batchable);
    await Promise.all([orig.release(), aug.release()]);
    ad.dispose();
  });
});

describe('ONNX adapter in the Explainer', () => {
  test('the Explainer produces a heatmap, for every region form, and tf tensors do not leak', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const explainer = new Explainer(ad);
    const image = randomImage(64, 32, 3);
    const before = tf.memory().numTensors;
    // Random weights: some classes have only negative evidence (an empty CAM); take one that has some.
    let e = await explainer.explain(image, { region: box(8, 4, 40, 24), classId: 0 });
    for (let c = 1; c < 8 && e.empty; c++) e = await explainer.explain(image, { region: box(8, 4, 40, 24), classId: c });
    assert.equal(e.layer.name, explainer.bottleneck);
    assert.equal(e.heatmap.length, 64 * 32);
    assert.ok(!e.empty && e.camMax > 0);
    assert.ok(e.weights && e.weights.length === 64);
    let max = 0;
    for (const v of e.heatmap) max = Math.max(max, v);
    assert.ok(Math.abs(max - 1) < 1e-6);
    const p = await explainer.explain(image, { region: pixel(20, 10), layer: ad.layers()[3].name, score: 'probability' });
    assert.equal(p.cam.length, p.camWidth * p.camHeight);
    await explainer.explain(image, { region: whole(), classId: 1, layer: INPUT_LAYER });
    explainer.release();
    assert.equal(tf.memory().numTensors, before);
    explainer.dispose();
  });
});

describe('many regions at once', () => {
  test('16 objectives stacked in one backward run equal 16 single runs', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const { x } = inputOf(ad, 6);
    const pass = await ad.forward(x);
    const bottleneck = new Explainer(ad).bottleneck;
    const objs = Array.from({ length: 16 }, (_, i) =>
      boxObjective(ad, (i * 3) % 50, i % 20, ((i * 3) % 50) + 12, (i % 20) + 10, i % 8, i % 3 === 0 ? 'probability' : 'logits'),
    );
    const many = await pass.gradientBatch(bottleneck, objs);
    assert.equal(many.length, 16);
    for (let i = 0; i < 16; i++) {
      const one = await pass.gradient(bottleneck, objs[i]);
      assert.ok(relDiff(many[i].gradients.dataSync(), one.gradients.dataSync()) < 1e-5, `objective ${i}`);
      assert.equal(many[i].score, one.score);
      assert.deepEqual(many[i].activations.dataSync(), one.activations.dataSync());
      tf.dispose([one.activations, one.gradients, many[i].activations, many[i].gradients]);
    }
    x.dispose();
    pass.dispose();
    ad.dispose();
  });
});

describe('many layers at once', () => {
  test('one backward run for several layers (gradientLayers, explainLayers) equals one run per layer', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const { x } = inputOf(ad, 8);
    const pass = await ad.forward(x);
    const names = ad.layers().map((l) => l.name);
    const layers = [names[1], names[Math.floor(names.length / 2)], new Explainer(ad).bottleneck, names[names.length - 2], INPUT_LAYER];
    // The one-run path applies: the input is upstream of every layer here.
    assert.ok(ad.rootOf(layers.map((l) => ad.resolve(l))), 'one run covers the layers');
    for (const o of [boxObjective(ad, 5, 4, 30, 20, 2), boxObjective(ad, 40, 10, 50, 18, 5, 'probability')]) {
      const all = await pass.gradientLayers(layers, o);
      assert.equal(all.length, layers.length);
      for (const [i, layer] of layers.entries()) {
        const one = await pass.gradient(layer, o);
        assert.ok(
          relDiff(all[i].gradients.dataSync(), one.gradients.dataSync()) < 1e-5,
          `${layer}: ${relDiff(all[i].gradients.dataSync(), one.gradients.dataSync())}`,
        );
        assert.deepEqual(all[i].activations.shape, one.activations.shape);
        assert.equal(all[i].score, one.score);
        tf.dispose([one.activations, one.gradients, all[i].activations, all[i].gradients]);
      }
    }
    x.dispose();
    pass.dispose();
    // Through the Explainer: the same heatmaps as one explanation per layer, no tensor left behind.
    const explainer = new Explainer(ad);
    const image = randomImage(64, 32, 4);
    const request = { region: box(3, 3, 40, 20), classId: 1 };
    const singles: Explanation[] = [];
    for (const layer of layers) singles.push(await explainer.explain(image, { ...request, layer }));
    const before = tf.memory().numTensors;
    const many = await explainer.explainLayers(image, request, layers);
    assert.equal(tf.memory().numTensors, before);
    many.forEach((e, i) => assert.ok(maxAbsDiff(e.heatmap, singles[i].heatmap) < 1e-4, `heatmap ${layers[i]}`));
    explainer.dispose();
  });
});

describe('adapter behaviour', () => {
  test('a primed forward run (objective known in advance: forward, cache and gradient in one run) equals forward + gradient', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const { x } = inputOf(ad, 12);
    const bottleneck = new Explainer(ad).bottleneck;
    const o = boxObjective(ad, 4, 6, 40, 22, 3);
    const plain = await ad.forward(x);
    const want = await plain.gradient(bottleneck, o);
    let asked = 0;
    const primed = await ad.forward(x, { layer: bottleneck, objective: o, objectiveOf: () => (asked++, o) });
    assert.equal(asked, 0, 'the known objective is used as is');
    assert.ok(maxAbsDiff(primed.output.dataSync(), plain.output.dataSync()) <= 1e-5, 'logits');
    // Lean: the primed run cached the layer and what its backward reads; the rest on first use.
    const early = ad.layers()[0].name;
    assert.throws(
      () => primed.activation(early),
      (e: unknown) => e instanceof SegGradCamError && /not cached/.test(e.message),
      'an uncached layer is refused until filled',
    );
    assert.ok(
      maxAbsDiff(primed.activation(bottleneck).dataSync(), plain.activation(bottleneck).dataSync()) <= 1e-5,
      'the primed layer is cached',
    );
    await primed.cacheActivations(ad.layers().map((l) => l.name));
    for (const l of ad.layers())
      assert.ok(maxAbsDiff(primed.activation(l.name).dataSync(), plain.activation(l.name).dataSync()) <= 1e-5, l.name);
    const got = await primed.gradient(bottleneck, o);
    assert.ok(
      relDiff(got.gradients.dataSync(), want.gradients.dataSync()) < 1e-5,
      `primed gradient: ${relDiff(got.gradients.dataSync(), want.gradients.dataSync())}`,
    );
    assert.ok(Math.abs(got.score - want.score) <= 1e-5 * Math.max(1, Math.abs(want.score)), 'score');
    // Later questions run on the cache as usual.
    const again = await primed.gradient(ad.layers()[2].name, o);
    const ref = await plain.gradient(ad.layers()[2].name, o);
    assert.ok(relDiff(again.gradients.dataSync(), ref.gradients.dataSync()) < 1e-5, 'a later layer');
    tf.dispose([
      want.activations,
      want.gradients,
      got.activations,
      got.gradients,
      again.activations,
      again.gradients,
      ref.activations,
      ref.gradients,
      x,
    ]);
    plain.dispose();
    primed.dispose();
    // Through the Explainer (a box and an explicit class: primed) the heatmap equals the cached path's.
    const explainer = new Explainer(ad);
    const image = randomImage(64, 32, 5);
    const request = { region: box(2, 3, 30, 25), classId: 4 };
    const first = await explainer.explain(image, request);
    const second = await explainer.explain(image, request);
    assert.ok(maxAbsDiff(first.heatmap, second.heatmap) < 1e-5, 'heatmap');
    assert.deepEqual(first.prediction.labels, second.prediction.labels);
    explainer.dispose();
  });

  test('a lean forward pass (layer known, objective not) caches that layer; others are filled on demand, with the same results', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const { x } = inputOf(ad, 14);
    const bottleneck = new Explainer(ad).bottleneck;
    const o = boxObjective(ad, 6, 2, 50, 20, 5, 'probability');
    const plain = await ad.forward(x);
    const lean = await ad.forward(x, { layer: bottleneck, objectiveOf: () => o });
    const other = ad.layers()[3].name;
    assert.throws(() => lean.activation(other), SegGradCamError, 'an uncached layer is refused');
    for (const layer of [bottleneck, other, INPUT_LAYER]) {
      const want = await plain.gradient(layer, o);
      const got = await lean.gradient(layer, o);
      assert.ok(relDiff(got.gradients.dataSync(), want.gradients.dataSync()) < 1e-5, `${layer}: gradient`);
      assert.ok(maxAbsDiff(got.activations.dataSync(), want.activations.dataSync()) <= 1e-5, `${layer}: activation`);
      tf.dispose([want.activations, want.gradients, got.activations, got.gradients]);
    }
    plain.dispose();
    lean.dispose();
    x.dispose();
    // Through the Explainer: a gradient-free method after a primed (lean) explanation of the same image.
    const explainer = new Explainer(ad);
    const image = randomImage(64, 32, 9);
    await explainer.explain(image, { region: box(2, 3, 30, 25), classId: 4 });
    const eigen = await explainer.explain(image, {
      region: box(2, 3, 30, 25),
      classId: 4,
      method: 'eigen-cam',
      layer: ad.layers()[4].name,
    });
    explainer.release();
    const fresh = await explainer.explain(image, {
      region: box(2, 3, 30, 25),
      classId: 4,
      method: 'eigen-cam',
      layer: ad.layers()[4].name,
    });
    assert.ok(maxAbsDiff(eigen.heatmap, fresh.heatmap) < 1e-5, 'eigen-cam on a lean pass equals eigen-cam on a full pass');
    explainer.dispose();
  });

  test('probability objectives: the JS softmax VJP on cached logits equals the in-graph VJP of inputGradients', async () => {
    const ad = await adapterFor(buildUnet(SMALL).model);
    const { x } = inputOf(ad, 8);
    const obj = boxObjective(ad, 5, 5, 30, 20, 3, 'probability');
    const pass = await ad.forward(x);
    const g = await pass.gradient(INPUT_LAYER, obj);
    const batch = await ad.inputGradients(x, obj);
    assert.ok(relDiff(batch.gradients.dataSync(), g.gradients.dataSync()) < 1e-4);
    assert.ok(Math.abs(batch.scores[0] - g.score) < 1e-4 * Math.abs(g.score));
    const scores = await ad.scores(x, obj);
    assert.ok(Math.abs(scores[0] - pass.score(obj)) < 1e-9 + 1e-6 * Math.abs(scores[0]));
    tf.dispose([x, g.activations, g.gradients, batch.gradients]);
    pass.dispose();
    ad.dispose();
  });

  test('a pass that cached only some layers computes others through the fused graph, with the same result', async () => {
    const { model } = buildUnet(SMALL);
    const full = await adapterFor(model);
    const bottleneck = new Explainer(full).bottleneck;
    const lean = await adapterFor(model, { cacheLayers: [bottleneck] });
    const { x } = inputOf(full, 10);
    const obj = boxObjective(full, 0, 0, 64, 32, 1);
    const layer = full.layers()[4].name;
    const [pf, pl] = [await full.forward(x), await lean.forward(x)];
    assert.throws(() => pl.activation(layer), /not cached/);
    const a = await pf.gradient(layer, obj);
    const b = await pl.gradient(layer, obj);
    assert.ok(relDiff(b.gradients.dataSync(), a.gradients.dataSync()) < 1e-5);
    assert.deepEqual(pl.activation(layer).shape, a.activations.shape);
    const c = await pl.gradient(layer, obj); // now from the cache: the backward graph alone
    assert.ok(relDiff(c.gradients.dataSync(), a.gradients.dataSync()) < 1e-5);
    tf.dispose([x, a.activations, a.gradients, b.activations, b.gradients, c.activations, c.gradients]);
    pf.dispose();
    pl.dispose();
    full.dispose();
    lean.dispose();
  });

  test('layers are NHWC, in order, with the bottleneck at 1/16 and chain prefixes (Conv before Relu) left out', async () => {
    const ad = await adapterFor(buildUnet({ ...SMALL, height: 64, width: 128 }).model);
    const layers = ad.layers();
    assert.equal(layers[0].name, 'enc1_relu1');
    assert.deepEqual(layers[0].outputShape, [1, 64, 128, 4]);
    assert.ok(!layers.some((l) => l.type === 'Conv' && l.name !== ad.logitsName));
    assert.equal(new Explainer(ad).bottleneck, 'bottleneck_relu2');
    assert.deepEqual(ad.output, { kind: 'map', height: 64, width: 128, channels: 8, activation: 'none' });
    ad.dispose();
  });
});

describe('PyTorch autograd', () => {
  const torch = findTorch();
  const skip = 'reason' in torch ? torch.reason : false;
  if (skip) console.log(`# skipping the PyTorch comparison: ${skip}`);
  test('α at the bottleneck equals PyTorch autograd (loss.backward) within 1e-5 relative, 128x256 U-Net', { skip }, async () => {
    if ('reason' in torch) return;
    const unet = buildUnet();
    const ad = await adapterFor(unet.model);
    const { nchw, x } = inputOf(ad, 12);
    const obj = boxObjective(ad, 40, 20, 200, 100, 5);
    const pass = await ad.forward(x);
    const explainer = new Explainer(ad);
    const g = await pass.gradient(explainer.bottleneck, obj);
    const [, h, w, c] = g.gradients.shape;
    const grad = g.gradients.dataSync();
    const alpha = new Float64Array(c);
    for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) alpha[k] += grad[i * c + k] / (h * w);
    const ref = runTorchReference(torch.python, unet, nchw, ad.cotangentNchw(obj.weights));
    const rel = relDiff(alpha, ref.alpha);
    console.log(`# α vs PyTorch: max relative difference ${rel.toExponential(2)}; S ${g.score} vs ${ref.score}`);
    assert.ok(rel < 1e-5, `α differs from PyTorch by ${rel} relative`);
    assert.ok(Math.abs(g.score - ref.score) < 1e-4 * Math.abs(ref.score));
    tf.dispose([x, g.activations, g.gradients]);
    pass.dispose();
    ad.dispose();
  });
});

test('explainMany on a new image (a forward pass that caches only the layer it is for) equals one explanation per request', async () => {
  const ad = await adapterFor(buildUnet({ height: 32, width: 64, base: 4, levels: 3, seed: 12 }).model);
  const explainer = new Explainer(ad);
  const image = randomImage(64, 32, 5);
  const requests = [
    { region: box(2, 3, 20, 12), classId: 1 },
    { region: pixel(40, 20), classId: 2, score: 'probability' as const },
    { region: whole(), classId: 0 },
    { region: box(30, 2, 63, 10), classId: 1, method: 'eigen-cam' },
    { region: pixel(5, 5), classId: 2, method: 'saliency' },
  ];
  const singles: Explanation[] = [];
  for (const r of requests) {
    explainer.release(); // each on a fresh pass with everything cached
    singles.push(await explainer.explain(image, r));
  }
  explainer.release();
  const before = tf.memory().numTensors;
  const many = await explainer.explainMany(image, requests);
  explainer.release();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  for (const [i, single] of singles.entries()) {
    assert.equal(many[i].method, single.method, `method ${i}`);
    assert.ok(
      Math.abs(many[i].scoreValue - single.scoreValue) <= 1e-5 * Math.max(1, Math.abs(single.scoreValue)) ||
        (Number.isNaN(single.scoreValue) && Number.isNaN(many[i].scoreValue)),
      `score ${i}: ${many[i].scoreValue} vs ${single.scoreValue}`,
    );
    assert.ok(maxAbsDiff(many[i].heatmap, single.heatmap) < 1e-4, `heatmap ${i}: ${maxAbsDiff(many[i].heatmap, single.heatmap)}`);
  }
  explainer.dispose();
});
