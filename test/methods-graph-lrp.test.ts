import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../src/errors.js';
import { Explainer } from '../src/explain.js';
import { UnsupportedOpError } from '../src/methods/index.js';
import { lrpRelevance } from '../src/methods/lrp.js';
import type { GraphModelAdapter } from '../src/engine/tfjs-graph/adapter.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { loadModelFile } from '../src/engine/tfjs/load-node.js';
import { readImageFile } from '../src/node.js';
import { regionObjective } from '../src/region/objective.js';
import { classRegion, whole } from '../src/region/region.js';
import { GraphBuilder, convAttrs, fusedAttrs, poolAttrs } from './helpers/graph-builder.js';
import { inputOf } from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

const glorot = (seed: number) => tf.initializers.glorotNormal({ seed });
const smallBias = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.1, seed });
const nhwc = { data_format: { s: Buffer.from('NHWC').toString('base64') } };

/**
 * A segmentation net as a LayersModel, and the same net written as a TF graph by hand with the
 * LayersModel's weights: fused conv + ReLU, depthwise conv + BiasAdd + Relu, MaxPool, Conv2D +
 * Add of the bias, a residual AddV2, nearest upsampling, ConcatV2, a strided fused conv, and a
 * transposed conv (Conv2DBackpropInput) + BiasAdd as the output.
 */
async function segmentationPair(): Promise<{ layers: LayersModelAdapter; graph: GraphModelAdapter }> {
  const input = tf.input({ shape: [8, 8, 3] });
  const conv = (name: string, filters: number, kernelSize: number, seed: number, extra: { strides?: number; activation?: 'relu' } = {}) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize,
      padding: 'same',
      kernelInitializer: glorot(seed),
      biasInitializer: smallBias(seed + 50),
      ...extra,
    });
  const c1 = conv('c1', 4, 3, 1, { activation: 'relu' }).apply(input) as tf.SymbolicTensor;
  const d1 = tf.layers
    .depthwiseConv2d({
      name: 'd1',
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      depthwiseInitializer: glorot(2),
      biasInitializer: smallBias(52),
    })
    .apply(c1) as tf.SymbolicTensor;
  const p = tf.layers.maxPooling2d({ poolSize: 2 }).apply(d1) as tf.SymbolicTensor;
  const c2 = conv('c2', 4, 1, 3).apply(p) as tf.SymbolicTensor;
  const s = tf.layers.add().apply([p, c2]) as tf.SymbolicTensor;
  const u = tf.layers.upSampling2d({ size: [2, 2] }).apply(s) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([u, c1]) as tf.SymbolicTensor;
  const c3 = conv('c3', 4, 3, 4, { strides: 2, activation: 'relu' }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers
    .conv2dTranspose({
      name: 'out',
      filters: 2,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      kernelInitializer: glorot(5),
      biasInitializer: smallBias(55),
    })
    .apply(c3) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });

  const g = new GraphBuilder();
  const w = (layer: string, i: number) => g.weight(`${layer}/w${i}`, model.getLayer(layer).getWeights()[i]);
  g.input('x', [1, 8, 8, 3]);
  g.op('c1', '_FusedConv2D', ['x', w('c1', 0), w('c1', 1)], { ...convAttrs(1, 'SAME'), ...fusedAttrs('BiasAdd', 'Relu') });
  g.op('d1/depthwise', 'DepthwiseConv2dNative', ['c1', w('d1', 0)], convAttrs(1, 'SAME'));
  g.op('d1/bias', 'BiasAdd', ['d1/depthwise', w('d1', 1)], nhwc);
  g.op('d1', 'Relu', ['d1/bias']);
  g.op('p', 'MaxPool', ['d1'], poolAttrs(2, 'VALID'));
  g.op('c2/conv', 'Conv2D', ['p', w('c2', 0)], convAttrs(1, 'SAME'));
  g.op('c2', 'AddV2', ['c2/conv', w('c2', 1)]);
  g.op('s', 'AddV2', ['p', 'c2']);
  g.op('u', 'ResizeNearestNeighbor', ['s', g.constant('u/size', [8, 8], [2], 'int32')], {
    align_corners: { b: false },
    half_pixel_centers: { b: false },
  });
  g.op('cat', 'ConcatV2', ['u', 'c1', g.constant('cat/axis', [3], [], 'int32')], { N: { i: '2' }, Tidx: { type: 'DT_INT32' } });
  g.op('c3', '_FusedConv2D', ['cat', w('c3', 0), w('c3', 1)], { ...convAttrs(2, 'SAME'), ...fusedAttrs('BiasAdd', 'Relu') });
  g.op(
    'out/transpose',
    'Conv2DBackpropInput',
    [g.constant('out/sizes', [1, 8, 8, 2], [4], 'int32'), w('out', 0), 'c3'],
    convAttrs(2, 'SAME'),
  );
  g.op('out', 'BiasAdd', ['out/transpose', w('out', 1)], nhwc);
  return { layers: new LayersModelAdapter(model), graph: await g.load() };
}

/** conv (ReLU) 'features' → global average pooling → dense: a classifier, as a LayersModel and as a graph (Mean → MatMul → BiasAdd). */
async function classifierPair(): Promise<{ layers: LayersModelAdapter; graph: GraphModelAdapter }> {
  const input = tf.input({ shape: [6, 6, 3] });
  const features = tf.layers
    .conv2d({
      name: 'features',
      filters: 5,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: glorot(7),
      biasInitializer: smallBias(8),
    })
    .apply(input) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  const head = tf.layers
    .dense({ name: 'head', units: 3, kernelInitializer: glorot(9), biasInitializer: smallBias(10) })
    .apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head });

  const g = new GraphBuilder();
  const w = (layer: string, i: number) => g.weight(`${layer}/w${i}`, model.getLayer(layer).getWeights()[i]);
  g.input('x', [1, 6, 6, 3]);
  g.op('features', '_FusedConv2D', ['x', w('features', 0), w('features', 1)], {
    ...convAttrs(1, 'SAME'),
    ...fusedAttrs('BiasAdd', 'Relu'),
  });
  g.op('gap', 'Mean', ['features', g.constant('gap/axes', [1, 2], [2], 'int32')], { keep_dims: { b: false }, Tidx: { type: 'DT_INT32' } });
  g.op('head/matmul', 'MatMul', ['gap', w('head', 0)], { transpose_a: { b: false }, transpose_b: { b: false } });
  g.op('head', 'BiasAdd', ['head/matmul', w('head', 1)], nhwc);
  return { layers: new LayersModelAdapter(model), graph: await g.load() };
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
};

describe('LRP on a GraphModel', () => {
  for (const [name, pair, size, objectiveOf] of [
    [
      'segmentation net (fused/unfused/depthwise/transposed convs, max-pool, add, resize, concat)',
      segmentationPair,
      8,
      (a: GraphModelAdapter) => {
        const mask = new Uint8Array(64);
        for (let i = 0; i < 64; i += 3) mask[i] = 1;
        return regionObjective(a.output, 1, mask, 'logits');
      },
    ],
    [
      'classifier (fused conv, Mean, MatMul, BiasAdd)',
      classifierPair,
      6,
      () => ({ weights: Float32Array.from([0, 1, 0]), on: 'logits' as const, offset: 0 }),
    ],
  ] as const) {
    test(`equals the LayersModel LRP with the same weights, ε and αβ: ${name}`, async () => {
      const { layers, graph } = await pair();
      const x = inputOf(randomImage(size, size, 4));
      const objective = objectiveOf(graph);
      for (const options of [
        { rule: 'epsilon' as const },
        { rule: 'epsilon' as const, epsilon: 0.05 },
        { rule: 'alpha-beta' as const },
        { rule: 'alpha-beta' as const, alpha: 1, beta: 0 },
      ]) {
        const want = lrpRelevance(layers, x, objective, options);
        const got = lrpRelevance(graph, x, objective, options);
        const scale = maxAbs(want.dataSync());
        assert.ok(scale > 1e-3, `a non-trivial reference: ${JSON.stringify(options)} ${scale}`);
        assert.ok(
          maxAbsDiff(got.dataSync(), want.dataSync()) <= 1e-5 * scale,
          `${JSON.stringify(options)}: ${maxAbsDiff(got.dataSync(), want.dataSync())} (scale ${scale})`,
        );
        tf.dispose([want, got]);
      }
      x.dispose();
      layers.dispose();
      graph.dispose();
    });
  }

  test('ε-rule conservation on a bias-free ReLU graph: Σ R_input = S', async () => {
    const g = new GraphBuilder();
    const k1 = tf.randomNormal([3, 3, 3, 6], 0, 0.5, 'float32', 1);
    const k2 = tf.randomNormal([3, 3, 6, 2], 0, 0.5, 'float32', 2);
    g.input('x', [1, 8, 8, 3]);
    g.op('conv1', 'Conv2D', ['x', g.weight('k1', k1)], convAttrs(1, 'SAME'));
    g.op('relu1', 'Relu', ['conv1']);
    g.op('pool', 'MaxPool', ['relu1'], poolAttrs(2, 'VALID'));
    g.op('conv2', 'Conv2D', ['pool', g.weight('k2', k2)], convAttrs(1, 'SAME'));
    const adapter = await g.load();
    const x = inputOf(randomImage(8, 8, 5));
    const objective = regionObjective(adapter.output, 0, new Uint8Array(16).fill(1), 'logits');
    const R = lrpRelevance(adapter, x, objective, { rule: 'epsilon', epsilon: 1e-9 });
    const S = tf.tidy(
      () => tf.sum(tf.mul(adapter.model.execute({ x }, 'conv2') as tf.Tensor, tf.tensor(objective.weights, [1, 4, 4, 2]))).dataSync()[0],
    );
    const total = tf.tidy(() => tf.sum(R).dataSync()[0]);
    assert.ok(Math.abs(S) > 0.05, `S = ${S}`);
    assert.ok(Math.abs(total - S) < 1e-4 * Math.abs(S), `Σ R = ${total}, S = ${S}`);
    tf.dispose([k1, k2, x, R]);
    adapter.dispose();
  });

  test('an op without a rule is a typed error naming the node and the op; a product of two non-gates too', async () => {
    const build = async (middle: (g: GraphBuilder) => string) => {
      const g = new GraphBuilder();
      g.input('x', [1, 4, 4, 3]);
      g.op('conv', 'Conv2D', ['x', g.constant('k', new Array(3 * 2).fill(0.5), [1, 1, 3, 2])], convAttrs(1, 'SAME'));
      g.op('out', 'Conv2D', [middle(g), g.constant('k2', [1, -1, 0.5, 2], [1, 1, 2, 2])], convAttrs(1, 'SAME'));
      return g.load();
    };
    const exp = await build((g) => g.op('squash', 'Exp', ['conv']));
    await assert.rejects(new Explainer(exp).explain(randomImage(4, 4), { region: whole(), classId: 1, method: 'lrp' }), (err: unknown) => {
      assert.ok(err instanceof UnsupportedOpError);
      assert.equal(err.nodeName, 'squash');
      assert.equal(err.op, 'Exp');
      assert.equal(err.code, 'model');
      assert.match(err.message, /'squash' \(op Exp\)/);
      return true;
    });
    const square = await build((g) => g.op('square', 'Mul', ['conv', 'conv']));
    assert.throws(
      () => lrpRelevance(square, tf.zeros([1, 4, 4, 3]), regionObjective(square.output, 1, new Uint8Array(16).fill(1), 'logits')),
      /'square' \(op Mul, a product of two tensors neither of which is a gate/,
    );
    // The same product with a sigmoid gate is fine: all relevance goes to the other factor.
    const gated = await build((g) => g.op('gated', 'Mul', ['conv', g.op('gate', 'Sigmoid', ['conv'])]));
    const R = lrpRelevance(
      gated,
      tf.ones([1, 4, 4, 3]) as tf.Tensor4D,
      regionObjective(gated.output, 1, new Uint8Array(16).fill(1), 'logits'),
    );
    assert.ok(maxAbs(R.dataSync()) > 0);
    R.dispose();
    for (const a of [exp, square, gated]) a.dispose();
  });

  test('the selfie GraphModel (hard-swish, squeeze-and-excitation gates, resize, transposed conv): a class region, finite, non-negative, no leaks', async () => {
    const adapter = (await loadModelFile('models/selfie/selfie.json')) as GraphModelAdapter;
    const explainer = new Explainer(adapter);
    const image = await readImageFile('fixtures/images/astronaut.png');
    await explainer.predict(image);
    // ε only: the αβ-rule takes ~2.5x as long on the cpu backend (its rules are checked against the LayersModel above).
    for (const rule of ['epsilon'] as const) {
      const before = tf.memory().numTensors;
      const t0 = performance.now();
      const e = await explainer.explain(image, { region: classRegion(), classId: 1, method: 'lrp', methodOptions: { rule } });
      const ms = performance.now() - t0;
      assert.equal(tf.memory().numTensors, before, `${rule}: no tensor left behind`);
      assert.ok(e.cam.every(Number.isFinite) && e.heatmap.every(Number.isFinite), rule);
      assert.ok(
        e.cam.every((v) => v >= 0),
        rule,
      );
      assert.ok(maxAbs(e.cam) > 0 && !e.empty, rule);
      assert.equal(e.camWidth, 256);
      console.log(`# selfie LRP (${rule}) on ${tf.getBackend()}: ${ms.toFixed(0)} ms`);
    }
    explainer.release();
  });
});

describe('CAM on a GraphModel', () => {
  test('equals Grad-CAM up to a positive scale on Mean → MatMul → BiasAdd, and the LayersModel CAM', async () => {
    const { layers, graph } = await classifierPair();
    const image = randomImage(6, 6, 3);
    const onGraph = new Explainer(graph);
    const onLayers = new Explainer(layers);
    let nonEmpty = 0;
    for (let c = 0; c < 3; c++) {
      const request = { region: whole(), classId: c, layer: 'features' };
      const cam = await onGraph.explain(image, { ...request, method: 'cam' });
      const grad = await onGraph.explain(image, { ...request, method: 'seg-grad-cam' });
      const reference = await onLayers.explain(image, { ...request, method: 'cam' });
      assert.ok(cam.weights && grad.weights && reference.weights);
      assert.ok(cosine(cam.weights, grad.weights) >= 0.9999, 'CAM weights ∝ Grad-CAM α');
      assert.ok(
        maxAbsDiff(
          cam.weights,
          Array.from(grad.weights, (v) => v * 36),
        ) < 1e-5,
        'scale N = 36',
      );
      assert.ok(maxAbsDiff(cam.cam, reference.cam) < 1e-5 * Math.max(1, maxAbs(reference.cam)));
      if (!cam.empty) {
        nonEmpty++;
        assert.ok(cosine(cam.cam, grad.cam) >= 0.9999);
      }
    }
    assert.ok(nonEmpty > 0);
    onGraph.release();
    onLayers.release();
  });

  test('a graph without a global-average-pooling + linear head is a typed error', async () => {
    const { graph } = await segmentationPair();
    await assert.rejects(
      new Explainer(graph).explain(randomImage(8, 8), { region: whole(), classId: 1, layer: 'c3', method: 'cam' }),
      (err: unknown) => {
        assert.ok(err instanceof SegGradCamError);
        assert.equal(err.code, 'model');
        assert.match(err.message, /CAM needs a global-average-pooling \+ linear head: node 'c3'/);
        return true;
      },
    );
    graph.dispose();
  });
});
