import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../src/errors.js';
import { buildUnet } from '../src/unet/build.js';
import { Confusion } from '../src/unet/metrics.js';
import { calibrateLogitsBias, datasetFor } from '../src/unet/dataset.js';
import { classWeightsFromFrequencies, learningRate, segmentationLoss } from '../src/unet/loss.js';
import { loadModelDir, saveModelDir } from '../src/unet/model-files.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../src/unet/options.js';
import { trainUnet } from '../src/unet/train.js';
import { useCpu } from './helpers/setup.js';

let tmp: string;
before(async () => {
  await useCpu();
  tmp = await mkdtemp(join(tmpdir(), 'sgc-unet-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('buildUnet', () => {
  test('output [1,H,W,11] logits and readable layer names', () => {
    const model = buildUnet({ inputSize: [32, 48], depth: 3, base: 4, seed: 1 });
    assert.deepEqual(model.outputs[0].shape, [null, 32, 48, 11]);
    const y = model.predict(tf.zeros([1, 32, 48, 3])) as tf.Tensor;
    assert.deepEqual(y.shape, [1, 32, 48, 11]);
    y.dispose();
    const names = new Set(model.layers.map((l) => l.name));
    for (const n of [
      'input',
      'enc1_conv1',
      'enc1_bn1',
      'enc1_relu1',
      'enc1_conv2',
      'enc1_relu2',
      'pool1',
      'enc3_relu2',
      'pool3',
      'bottleneck_conv1',
      'bottleneck_relu2',
      'up3',
      'concat3',
      'dec3_relu2',
      'up1',
      'concat1',
      'dec1_relu2',
      'logits',
    ])
      assert.ok(names.has(n), `layer ${n} missing`);
    assert.ok(!names.has('pool4'));
    const logits = model.getLayer('logits');
    assert.equal((logits.getConfig() as { activation: string }).activation, 'linear');
    assert.equal(model.layers[model.layers.length - 1].name, 'logits');
    // channels double per level; the skip is concatenated before the upsampled path
    assert.deepEqual(model.getLayer('enc2_relu2').outputShape, [null, 16, 24, 8]);
    assert.deepEqual(model.getLayer('bottleneck_relu2').outputShape, [null, 4, 6, 32]);
    assert.deepEqual(model.getLayer('concat3').outputShape, [null, 8, 12, 32]);
    model.dispose();
  });

  test('depth 4 at 64x64 without batch norm; seeded initialisation is deterministic', () => {
    const a = buildUnet({ inputSize: [64, 64], depth: 4, base: 2, batchNorm: false, seed: 5 });
    const b = buildUnet({ inputSize: [64, 64], depth: 4, base: 2, batchNorm: false, seed: 5 });
    const c = buildUnet({ inputSize: [64, 64], depth: 4, base: 2, batchNorm: false, seed: 6 });
    assert.ok(!a.layers.some((l) => l.name.includes('_bn')));
    assert.ok(a.layers.some((l) => l.name === 'pool4'));
    assert.deepEqual(a.getLayer('bottleneck_relu2').outputShape, [null, 4, 4, 32]);
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    const wc = c.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(wa, wb);
    assert.notDeepEqual(wa[0], wc[0]);
    [a, b, c].forEach((m) => m.dispose());
  });

  test('sizes not divisible by 2^depth are usage errors', () => {
    assert.throws(() => buildUnet({ inputSize: [60, 64], depth: 4 }), SegGradCamError);
  });
});

describe('metrics', () => {
  test('IoU from a hand-computed confusion matrix', () => {
    // truth:  0 0 0 1 1 2 2 2
    // pred:   0 0 1 1 1 2 0 1
    const conf = new Confusion(3).add([0, 0, 0, 1, 1, 2, 2, 2], [0, 0, 1, 1, 1, 2, 0, 1]);
    // class 0: TP 2, FP 1 (a 2 predicted 0), FN 1 -> 2/4
    // class 1: TP 2, FP 2, FN 0 -> 2/4
    // class 2: TP 1, FP 0, FN 2 -> 1/3
    const iou = conf.iou();
    assert.ok(Math.abs(iou[0] - 0.5) < 1e-12);
    assert.ok(Math.abs(iou[1] - 0.5) < 1e-12);
    assert.ok(Math.abs(iou[2] - 1 / 3) < 1e-12);
    assert.ok(Math.abs(conf.meanIou() - (0.5 + 0.5 + 1 / 3) / 3) < 1e-12);
    assert.ok(Math.abs(conf.accuracy() - 5 / 8) < 1e-12);
    // a class absent from truth and prediction is left out of the mean
    const c4 = new Confusion(4).add([0, 1], [0, 1]);
    assert.ok(Number.isNaN(c4.iou()[3]));
    assert.equal(c4.meanIou(), 1);
  });

  test('learning-rate schedule: warm-up, peak, cosine to the floor', () => {
    const o = { lr: 1e-3, warmupSteps: 10, minLrFactor: 0.1, steps: 110 };
    assert.ok(Math.abs(learningRate(0, o) - 1e-4) < 1e-12);
    assert.ok(Math.abs(learningRate(10, o) - 1e-3) < 1e-12);
    assert.ok(Math.abs(learningRate(60, o) - 0.55e-3) < 1e-12);
    assert.ok(Math.abs(learningRate(110, o) - 1e-4) < 1e-12);
    assert.ok(learningRate(30, o) > learningRate(40, o));
  });

  test('class weights: rarer classes weigh more, mean pixel weight 1', () => {
    const f = [0.9, 0.05, 0.05];
    const w = classWeightsFromFrequencies(f, 0.5);
    assert.ok(w[1] > w[0]);
    assert.ok(Math.abs(f[0] * w[0] + f[1] * w[1] + f[2] * w[2] - 1) < 1e-12);
    assert.deepEqual(classWeightsFromFrequencies(f, 0), [1, 1, 1]);
  });
});

describe('training', () => {
  test('a few Adam steps on a tiny model reduce the loss on a fixed batch', () => {
    const model = buildUnet({ inputSize: [16, 16], depth: 2, base: 4, seed: 3 });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tidy(() => tf.cast(tf.greater(tf.slice(x, [0, 0, 0, 0], [2, 16, 16, 1]).reshape([2, 16, 16]), 0.5), 'int32'));
    const y = tf.oneHot(labels as tf.Tensor3D, 11).toFloat() as tf.Tensor4D;
    const opt = tf.train.adam(1e-2);
    const lossOf = (): number =>
      tf.tidy(() => segmentationLoss(model.apply(x, { training: true }) as tf.Tensor4D, y, y, 1, 1).dataSync()[0]);
    const first = lossOf();
    for (let i = 0; i < 5; i++)
      tf.dispose(
        opt.minimize(() => segmentationLoss(model.apply(x, { training: true }) as tf.Tensor4D, y, y, 1, 1), true, vars) as tf.Scalar,
      );
    const last = lossOf();
    assert.ok(last < first - 0.05, `loss ${first} -> ${last}`);
    tf.dispose([x, labels, y]);
    opt.dispose();
    model.dispose();
  });

  test('trainUnet writes a loadable model; a resumed run equals an uninterrupted one', async () => {
    const base: TrainOptions = {
      ...DEFAULT_TRAIN_OPTIONS,
      outDir: join(tmp, 'straight'),
      steps: 4,
      batch: 2,
      size: 16,
      depth: 2,
      base: 2,
      warmupSteps: 1,
      checkpointEvery: 2,
      evalTiles: 4,
      valTiles: 2,
      calibrate: false,
    };
    const straight = await trainUnet(base);
    assert.equal(straight.steps, 4);
    assert.equal(straight.eval.perClassIou.length, 11);
    assert.ok(straight.eval.meanIou >= 0 && straight.eval.meanIou <= 1);
    const m1 = await loadModelDir(base.outDir);
    const half = await trainUnet({ ...base, outDir: join(tmp, 'half'), steps: 2 });
    assert.equal(half.steps, 2);
    const resumed = await trainUnet({ ...base, outDir: join(tmp, 'resumed'), resume: join(tmp, 'half', 'checkpoint') });
    assert.equal(resumed.resumedFrom?.step, 2);
    const m2 = await loadModelDir(join(tmp, 'resumed'));
    const w1 = m1.getWeights();
    const w2 = m2.getWeights();
    assert.equal(w1.length, w2.length);
    let maxDiff = 0;
    w1.forEach((w, i) => {
      const a = w.dataSync();
      const b = w2[i].dataSync();
      for (let j = 0; j < a.length; j++) maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
    });
    assert.ok(maxDiff < 1e-5, `resumed weights differ by ${maxDiff}`);
    // a save/load round trip predicts the same
    const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 2);
    await saveModelDir(m1, join(tmp, 'copy'));
    const m3 = await loadModelDir(join(tmp, 'copy'));
    assert.deepEqual(Array.from((m3.predict(x) as tf.Tensor).dataSync()), Array.from((m1.predict(x) as tf.Tensor).dataSync()));
    [m1, m2, m3].forEach((m) => m.dispose());
    x.dispose();
  });

  test('the logits prior correction subtracts alpha * log(w) from the logits bias', async () => {
    const model = buildUnet({ inputSize: [16, 16], depth: 2, base: 2, seed: 4 });
    const data = await datasetFor({ ...DEFAULT_TRAIN_OPTIONS, size: 16 });
    const before = model.getLayer('logits').getWeights()[1].arraySync() as number[];
    const w = Array.from({ length: 11 }, (_, c) => (c === 0 ? 0.5 : 4));
    const { alpha, scores } = calibrateLogitsBias(model, w, data, 2, [0, 1]);
    assert.deepEqual(
      scores.map((s) => s[0]),
      [0, 1],
    );
    const after = model.getLayer('logits').getWeights()[1].arraySync() as number[];
    after.forEach((v, c) => assert.ok(Math.abs(v - (before[c] - alpha * Math.log(w[c]))) < 1e-6));
    model.dispose();
  });
});
