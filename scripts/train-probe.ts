// Quick timing probe: one model, a few training steps on the chosen backend.
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { buildUnet } from '../src/unet/build.js';
import { segmentationLoss } from '../src/unet/train.js';
const backend = (process.argv[2] ?? 'wasm') as 'wasm' | 'cpu';
const depth = Number(process.argv[3] ?? 4),
  base = Number(process.argv[4] ?? 8),
  batch = Number(process.argv[5] ?? 8),
  size = Number(process.argv[6] ?? 64);
await setupBackend(backend);
const model = buildUnet({ inputSize: [size, size], depth, base, seed: 1 });
console.log('params', model.countParams());
const opt = tf.train.adam(1e-3);
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const x = tf.randomUniform([batch, size, size, 3]);
const lab = tf.randomUniform([batch, size, size], 0, 11, 'int32');
const y = tf.oneHot(lab, 11).toFloat() as tf.Tensor4D;
for (let i = 0; i < 8; i++) {
  const t = performance.now();
  const l = opt.minimize(() => segmentationLoss(model.apply(x, { training: true }) as tf.Tensor4D, y, y, 1, 1), true, vars) as tf.Scalar;
  const v = (await l.data())[0];
  l.dispose();
  console.log(i, v.toFixed(4), (performance.now() - t).toFixed(0), 'ms', tf.memory().numTensors);
}
