// Kernel profile of one training step (which kernels dominate the step time).
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { buildUnet } from '../src/unet/build.js';
import { segmentationLoss } from '../src/unet/train.js';
const depth = Number(process.argv[2] ?? 4),
  base = Number(process.argv[3] ?? 8),
  batch = Number(process.argv[4] ?? 8),
  bn = process.argv[5] !== 'nobn';
await setupBackend('wasm');
const model = buildUnet({ inputSize: [64, 64], depth, base, seed: 1, batchNorm: bn });
const opt = tf.train.adam(1e-3);
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const x = tf.randomUniform([batch, 64, 64, 3]);
const y = tf.oneHot(tf.randomUniform([batch, 64, 64], 0, 11, 'int32'), 11).toFloat() as tf.Tensor4D;
const step = () => {
  const l = opt.minimize(() => segmentationLoss(model.apply(x, { training: true }) as tf.Tensor4D, y, y, 1, 1), true, vars) as tf.Scalar;
  l.dataSync();
  l.dispose();
};
step();
step();
const t = performance.now();
for (let i = 0; i < 5; i++) step();
console.log('step ms', ((performance.now() - t) / 5).toFixed(0));
const prof = await tf.profile(() => {
  step();
});
const agg = new Map<string, number>();
for (const k of prof.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log(
  [...agg.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join('\n'),
);
