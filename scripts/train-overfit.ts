// Sanity check: can the U-Net fit one fixed batch of tiles? Prints loss and fg IoU.
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { createTextureMnist } from '../src/data/assets-node.js';
import { NUM_CLASSES, oneHot } from '../src/data/texture-mnist.js';
import { buildUnet } from '../src/unet/build.js';
import { Confusion } from '../src/unet/metrics.js';
import { classWeightsFromFrequencies, segmentationLoss } from '../src/unet/train.js';
await setupBackend('wasm');
const lr = Number(process.argv[2] ?? 1e-3),
  power = Number(process.argv[3] ?? 0.5),
  bn = process.argv[4] !== 'nobn',
  fixed = process.argv[5] !== 'stream',
  steps = Number(process.argv[6] ?? 150),
  base = Number(process.argv[7] ?? 8);
const ds = await createTextureMnist({
  textureContrast: [Number(process.env.C0 ?? 0.15), Number(process.env.C1 ?? 0.35)],
  brightnessGap: Number(process.env.GAP ?? 0.35),
});
const model = buildUnet({ inputSize: [64, 64], depth: 4, base, seed: 1, batchNorm: bn });
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const opt = tf.train.adam(lr);
const B = 8;
const freq = new Array(NUM_CLASSES).fill(0);
{
  const { y } = ds.arrays(
    'train',
    Array.from({ length: 64 }, (_, i) => 1e6 + i),
  );
  for (const v of y) freq[v]++;
}
const cw = classWeightsFromFrequencies(
  freq.map((f) => f / freq.reduce((a, b) => a + b, 0)),
  power,
);
console.log('weights', cw.map((v) => v.toFixed(2)).join(' '));
const t0 = performance.now();
for (let s = 0; s < steps; s++) {
  const idx = Array.from({ length: B }, (_, i) => (fixed ? 0 : s * B) + i);
  const { x, y } = ds.arrays('train', idx);
  const oh = oneHot(y, NUM_CLASSES);
  const ow = new Float32Array(oh.length);
  for (let i = 0; i < y.length; i++) ow[i * NUM_CLASSES + y[i]] = cw[y[i]];
  const xt = tf.tensor4d(x, [B, 64, 64, 3]),
    yt = tf.tensor4d(oh, [B, 64, 64, NUM_CLASSES]),
    wt = tf.tensor4d(ow, [B, 64, 64, NUM_CLASSES]);
  let pred: tf.Tensor | undefined;
  const l = opt.minimize(
    () => {
      const lg = model.apply(xt, { training: true }) as tf.Tensor4D;
      pred = tf.keep(tf.argMax(lg, -1));
      return segmentationLoss(lg, yt, wt, 1, 1);
    },
    true,
    vars,
  ) as tf.Scalar;
  const lv = l.dataSync()[0];
  const p = pred!.dataSync();
  if (s % 10 === 9) {
    const fg = new Confusion(2).add(
      Array.from(y, (v) => (v > 0 ? 1 : 0)),
      Array.from(p, (v) => (v > 0 ? 1 : 0)),
    );
    const c = new Confusion(NUM_CLASSES).add(y, p);
    console.log(
      s + 1,
      lv.toFixed(3),
      'fgIoU',
      fg.iou()[1].toFixed(3),
      'mIoU',
      c.meanIou().toFixed(3),
      ((performance.now() - t0) / 1000).toFixed(0) + 's',
    );
  }
  tf.dispose([l, xt, yt, wt, pred!]);
}
