/**
 * The VJPs over a LayersModel's graph on the cached pass (src/engine/tfjs-layers/backward.ts) against
 * tf.grad over a re-run of the downstream part (the tape path, itself checked against finite
 * differences in layers-gradient.test.ts): every layer of every model here as the cut, logits and
 * probability objectives, one objective and three stacked.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER, type Objective } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { buildUnet } from '../src/unet/build.js';
import { regionObjective } from '../src/region/objective.js';
import { maxAbs, maxAbsDiff, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

const L = tf.layers;
const sym = (x: unknown) => x as tf.SymbolicTensor;

/** Every layer kind with a rule, in one graph (strides, 'same'/'valid', skips, products, pooling, resizing). */
function zoo(): tf.LayersModel {
  const seed = (s: number) => ({
    kernelInitializer: tf.initializers.glorotNormal({ seed: s }),
    biasInitializer: tf.initializers.randomNormal({ seed: s + 50, stddev: 0.1 }),
  });
  const x = tf.input({ shape: [16, 16, 3] });
  const a = sym(L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'elu', ...seed(1) }).apply(x));
  const b = sym(L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', ...seed(2) }).apply(a));
  const c = sym(L.leakyReLU({ alpha: 0.2 }).apply(b));
  const d = sym(L.averagePooling2d({ poolSize: 2 }).apply(c));
  const e = sym(L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(d));
  const f = sym(L.add().apply([e, c]));
  const g = sym(L.multiply().apply([f, b]));
  const h = sym(L.activation({ activation: 'relu6' }).apply(g));
  const i = sym(L.dropout({ rate: 0.5 }).apply(h));
  const j = sym(L.upSampling2d({ size: [2, 2] }).apply(i));
  const k = sym(L.concatenate().apply([j, a]));
  const l = sym(L.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'sigmoid', ...seed(3) }).apply(k));
  const m = sym(L.reLU({ maxValue: 0.6 }).apply(l));
  const n = sym(L.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(m));
  const bn = L.batchNormalization();
  const o = sym(bn.apply(n));
  const p = sym(L.conv2dTranspose({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', ...seed(4) }).apply(o));
  const out = sym(L.conv2d({ filters: 4, kernelSize: 1, activation: 'softmax', ...seed(5) }).apply(p));
  const model = tf.model({ inputs: x, outputs: out });
  randomiseBatchNorm(model);
  return model;
}

/** A classifier: conv, BN, ReLU, global average pooling / flatten, dense with a softmax. */
function classifier(flatten: boolean): tf.LayersModel {
  const x = tf.input({ shape: [8, 8, 3] });
  let y = sym(
    L.conv2d({
      filters: 6,
      kernelSize: 3,
      strides: flatten ? 2 : 1,
      padding: 'same',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }),
    }).apply(x),
  );
  y = sym(L.batchNormalization().apply(y));
  y = sym(L.reLU().apply(y));
  y = sym((flatten ? L.flatten() : L.globalAveragePooling2d({})).apply(y));
  if (flatten) y = sym(L.reshape({ targetShape: [96] }).apply(y));
  const out = sym(L.dense({ units: 5, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 10 }) }).apply(y));
  const model = tf.model({ inputs: x, outputs: out });
  randomiseBatchNorm(model);
  return model;
}

/** Non-trivial BN statistics and affine parameters (fresh layers have mean 0, variance 1, γ 1, β 0). */
function randomiseBatchNorm(model: tf.LayersModel): void {
  let s = 20;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const [gamma, beta, mean, variance] = layer.getWeights();
    const fresh = [
      tf.randomNormal(gamma.shape, 1, 0.3, 'float32', s++),
      tf.randomNormal(beta.shape, 0, 0.3, 'float32', s++),
      tf.randomNormal(mean.shape, 0, 0.3, 'float32', s++),
      tf.randomUniform(variance.shape, 0.2, 2, 'float32', s++),
    ];
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}

function objectives(adapter: LayersModelAdapter): Objective[] {
  const { height, width, channels } = adapter.output;
  const n = adapter.output.kind === 'vector' ? channels : height * width * channels;
  const make = (seed: number, on: Objective['on']): Objective => {
    let s = seed;
    const weights = Float32Array.from({ length: n }, () => ((s = (s * 16807) % 2147483647) % 5 === 0 ? 1 : 0));
    return { weights, on, offset: 0 };
  };
  return [make(7, 'logits'), make(11, 'probability'), make(13, 'logits')];
}

const models: Array<[string, () => tf.LayersModel]> = [
  ['tiny U-Net (fused ReLU convs, max-pool, up-conv, concat)', () => tinyUnet(16, 3, 8)],
  [
    'project U-Net with batch norm (depth 2, base 4)',
    () => {
      const m = buildUnet({ inputSize: [16, 16], classes: 5, depth: 2, base: 4, batchNorm: true, seed: 3 });
      randomiseBatchNorm(m);
      return m;
    },
  ],
  ['zoo of layers', zoo],
  ['classifier, global average pooling', () => classifier(false)],
  ['classifier, flatten + reshape', () => classifier(true)],
];

describe('VJPs on the cached pass equal tf.grad over a re-run', () => {
  for (const [name, make] of models) {
    test(name, async () => {
      const model = make();
      const vjp = new LayersModelAdapter(model);
      const tape = new LayersModelAdapter(model, { differentiate: 'tape' });
      const { height, width, channels } = vjp.input;
      const x = tf.randomUniform([1, height, width, channels], 0, 1, 'float32', 5) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const [pv, pt] = [await vjp.forward(x), await tape.forward(x)];
      const objs = objectives(vjp);
      let checked = 0;
      for (const layer of [INPUT_LAYER, ...vjp.layers().map((l) => l.name)]) {
        assert.equal(vjp.gradientMode(layer), 'vjp', `${layer} has a rule`);
        for (const o of objs.slice(0, 2)) {
          const [gv, gt] = [await pv.gradient(layer, o), await pt.gradient(layer, o)];
          const tol = 1e-5 * Math.max(maxAbs(gt.gradients.dataSync()), 1e-6);
          assert.ok(
            maxAbsDiff(gv.gradients.dataSync(), gt.gradients.dataSync()) <= tol,
            `${layer} ${o.on}: ${maxAbsDiff(gv.gradients.dataSync(), gt.gradients.dataSync())} > ${tol}`,
          );
          assert.ok(Math.abs(gv.score - gt.score) <= 1e-5 * Math.max(1, Math.abs(gt.score)), `${layer} score`);
          tf.dispose([gv.activations, gv.gradients, gt.activations, gt.gradients]);
          checked++;
        }
        const [bv, bt] = [await pv.gradientBatch!(layer, objs), await pt.gradientBatch!(layer, objs)];
        for (let k = 0; k < objs.length; k++) {
          const tol = 1e-5 * Math.max(maxAbs(bt[k].gradients.dataSync()), 1e-6);
          assert.ok(maxAbsDiff(bv[k].gradients.dataSync(), bt[k].gradients.dataSync()) <= tol, `${layer} batched #${k}`);
          tf.dispose([bv[k].activations, bv[k].gradients, bt[k].activations, bt[k].gradients]);
        }
      }
      pv.dispose();
      pt.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.ok(checked >= 6, 'gradients checked');
      x.dispose();
      model.dispose();
    });
  }
});

test('a layer without a rule after the cut: the adapter says so and falls back to tf.grad (same numbers)', async () => {
  const x = tf.input({ shape: [8, 8, 3] });
  const a = sym(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'first' }).apply(x));
  const b = sym(L.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(a));
  const c = sym(L.conv2d({ filters: 2, kernelSize: 1, name: 'last' }).apply(b));
  const model = tf.model({ inputs: x, outputs: c });
  const adapter = new LayersModelAdapter(model);
  assert.equal(adapter.gradientMode('first'), 'tape');
  assert.equal(adapter.gradientMode('dw'), 'vjp');
  const tape = new LayersModelAdapter(model, { differentiate: 'tape' });
  const input = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const o: Objective = { weights: new Float32Array(128).fill(1), on: 'logits', offset: 0 };
  const [p1, p2] = [await adapter.forward(input), await tape.forward(input)];
  const [g1, g2] = [await p1.gradient('first', o), await p2.gradient('first', o)];
  assert.ok(maxAbsDiff(g1.gradients.dataSync(), g2.gradients.dataSync()) === 0, 'fallback equals the tape');
  tf.dispose([g1.activations, g1.gradients, g2.activations, g2.gradients, input]);
  p1.dispose();
  p2.dispose();
  model.dispose();
});

describe('VJPs on windows around the region equal the VJPs on the whole map', () => {
  const windowModels: Array<[string, () => tf.LayersModel, number]> = [
    // [name, model, how many layers at least must run on windows]
    [
      'project U-Net with batch norm (depth 3, base 4, 32x64)',
      () => {
        const m = buildUnet({ inputSize: [32, 64], classes: 5, depth: 3, base: 4, batchNorm: true, seed: 4 });
        randomiseBatchNorm(m);
        return m;
      },
      8,
    ],
    ['tiny U-Net (same-padded up-conv)', () => tinyUnet(16, 3, 8), 3],
    ['zoo of layers (valid conv, products, pooling: windows only after the last pooling)', zoo, 1],
    [
      'strided convs (same and valid, odd sizes), average pooling, nearest up-sampling, add, concat',
      () => {
        const init = (s: number) => ({
          kernelInitializer: tf.initializers.glorotNormal({ seed: s }),
          biasInitializer: tf.initializers.randomNormal({ seed: s + 50, stddev: 0.1 }),
        });
        const x = tf.input({ shape: [16, 32, 3] });
        const c1 = sym(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', ...init(1) }).apply(x));
        const c2 = sym(L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'elu', ...init(2) }).apply(c1)); // 8x16
        const p = sym(L.averagePooling2d({ poolSize: 2 }).apply(c2)); // 4x8
        const u1 = sym(L.upSampling2d({ size: [2, 2] }).apply(p)); // 8x16
        const sum = sym(L.add().apply([u1, c2]));
        const u2 = sym(L.upSampling2d({ size: [2, 2] }).apply(sum)); // 16x32
        const cat = sym(L.concatenate().apply([u2, c1]));
        const v = sym(L.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'valid', activation: 'tanh', ...init(3) }).apply(cat)); // 7x15
        const u3 = sym(L.upSampling2d({ size: [2, 2] }).apply(v)); // 14x30
        const out = sym(L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', ...init(4) }).apply(u3));
        return tf.model({ inputs: x, outputs: out });
      },
      11,
    ],
  ];
  for (const [name, make, minWindowed] of windowModels) {
    test(name, async () => {
      const model = make();
      const windowed = new LayersModelAdapter(model);
      const whole = new LayersModelAdapter(model, { windowMaxArea: 0 });
      const { height: H, width: W } = windowed.output;
      const { channels } = windowed.input;
      const x = tf.randomUniform([1, windowed.input.height, windowed.input.width, channels], 0, 1, 'float32', 6) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const [pw, pf] = [await windowed.forward(x), await whole.forward(x)];
      const box = (y0: number, x0: number, h: number, w: number) => {
        const mask = new Uint8Array(H * W);
        for (let y = y0; y < Math.min(H, y0 + h); y++) for (let xx = x0; xx < Math.min(W, x0 + w); xx++) mask[y * W + xx] = 1;
        return mask;
      };
      const c = windowed.output.channels;
      const objs = [
        regionObjective(windowed.output, 1, box(0, 0, 3, 4), 'logits'), // corner
        regionObjective(windowed.output, 2 % c, box(H >> 1, W >> 1, 1, 1), 'logits'), // one pixel
        regionObjective(windowed.output, 0, box(H - 3, W - 5, 3, 5), 'probability'), // bottom-right edge
        regionObjective(windowed.output, 1, box(H >> 2, W >> 2, 3, 6), 'logits'), // interior
      ];
      let used = 0;
      for (const layer of [INPUT_LAYER, ...windowed.layers().map((l) => l.name)]) {
        if (windowed.windowReason(layer) == null) used++;
        for (const o of objs) {
          const [gw, gf] = [await pw.gradient(layer, o), await pf.gradient(layer, o)];
          const tol = 1e-5 * Math.max(maxAbs(gf.gradients.dataSync()), 1e-6);
          const d = maxAbsDiff(gw.gradients.dataSync(), gf.gradients.dataSync());
          assert.ok(d <= tol, `${layer}, region support ${JSON.stringify(o.support)}: ${d} > ${tol}`);
          assert.deepEqual(gw.gradients.shape, gf.gradients.shape, `${layer} shape`);
          tf.dispose([gw.activations, gw.gradients, gf.activations, gf.gradients]);
        }
        // Stacked: the two nearby boxes run together, the distant ones alone; results in request order.
        const batch = [objs[3], objs[0], objs[2], { ...objs[3], weights: objs[3].weights.map((v, i) => (i % c === 0 ? v : 0)) }];
        const [bw, bf] = [await pw.gradientBatch!(layer, batch), await pf.gradientBatch!(layer, batch)];
        for (let k = 0; k < batch.length; k++) {
          const tol = 1e-5 * Math.max(maxAbs(bf[k].gradients.dataSync()), 1e-6);
          assert.ok(maxAbsDiff(bw[k].gradients.dataSync(), bf[k].gradients.dataSync()) <= tol, `${layer} batched #${k}`);
          tf.dispose([bw[k].activations, bw[k].gradients, bf[k].activations, bf[k].gradients]);
        }
      }
      assert.ok(used >= minWindowed, `${used} layers ran on windows, expected at least ${minWindowed}`);
      pw.dispose();
      pf.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      x.dispose();
      model.dispose();
    });
  }

  test('a layer before a layer without a window rule (bilinear up-sampling, overlapping pooling) says why it runs on the whole map', () => {
    const model = zoo();
    const adapter = new LayersModelAdapter(model);
    const names = adapter.layers().map((l) => l.name);
    const [conv, avgPool] = [names[0], names[3]];
    assert.match(adapter.windowReason(conv) ?? '', /\(UpSampling2D\): bilinear up-sampling/);
    assert.match(adapter.windowReason(avgPool) ?? '', /\(UpSampling2D\): bilinear up-sampling/);
    assert.equal(adapter.windowReason(names[names.length - 2]), null, 'the last up-convolution runs on windows');
    model.dispose();
    const x = tf.input({ shape: [8, 8, 3] });
    const a = sym(L.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'first' }).apply(x));
    const b = sym(L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'overlapping' }).apply(a));
    const overlapping = tf.model({ inputs: x, outputs: sym(L.conv2d({ filters: 2, kernelSize: 1 }).apply(b)) });
    assert.match(
      new LayersModelAdapter(overlapping).windowReason('first') ?? '',
      /overlapping \(MaxPooling2D\): pooling windows that overlap/,
    );
    overlapping.dispose();
  });
});
