// Compares the training gradients of the U-Net (BN, loss) on wasm against cpu.
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { createTextureMnist } from '../src/data/assets-node.js';
import { NUM_CLASSES, oneHot } from '../src/data/texture-mnist.js';
import { buildUnet } from '../src/unet/build.js';
import { segmentationLoss } from '../src/unet/train.js';
const bn = process.argv[2] !== 'nobn';
const ds = await createTextureMnist({});
const { x, y } = ds.arrays('train', [0, 1]);
const oh = oneHot(y, NUM_CLASSES);
const grads: Record<string, Float32Array[]> = {};
for (const be of ['cpu', 'wasm'] as const) {
  await setupBackend(be);
  const model = buildUnet({ inputSize: [64, 64], depth: 4, base: 4, seed: 1, batchNorm: bn });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const xt = tf.tensor4d(x, [2, 64, 64, 3]),
    yt = tf.tensor4d(oh, [2, 64, 64, NUM_CLASSES]);
  const { value, grads: g } = tf.variableGrads(
    () => segmentationLoss(model.apply(xt, { training: true }) as tf.Tensor4D, yt, yt, 1, 1),
    vars,
  );
  console.log(be, 'loss', value.dataSync()[0]);
  grads[be] = vars.map((v) => g[v.name].dataSync() as Float32Array);
  model.dispose();
}
const names = buildUnet({ inputSize: [64, 64], depth: 4, base: 4, seed: 1, batchNorm: bn }).trainableWeights.map((w) => w.name);
grads.cpu.forEach((a, i) => {
  const b = grads.wasm[i];
  let d = 0,
    m = 0;
  for (let j = 0; j < a.length; j++) {
    d = Math.max(d, Math.abs(a[j] - b[j]));
    m = Math.max(m, Math.abs(a[j]));
  }
  if (d > 1e-3 * Math.max(m, 1e-3)) console.log('MISMATCH', names[i], 'maxdiff', d.toExponential(2), 'max', m.toExponential(2));
});
console.log('done');
