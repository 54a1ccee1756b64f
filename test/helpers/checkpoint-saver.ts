/**
 * Child process of test/unet-checkpoint.test.ts: saves checkpoints of a tiny U-Net into argv[2]
 * in an endless loop (step 1, 2, …), printing "saved <step>" after each, until it is killed.
 */
import * as tf from '@tensorflow/tfjs';
import { buildUnet } from '../../src/unet/build.js';
import { saveCheckpoint } from '../../src/unet/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/unet/options.js';
import { useCpu } from './setup.js';

await useCpu();
const dir = process.argv[2];
const model = buildUnet({ inputSize: [16, 16], depth: 2, base: 2, seed: 3 });
const optimizer = tf.train.adam(1e-3);
const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 1);
optimizer.minimize(() => tf.mean(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar);
const options = { ...DEFAULT_TRAIN_OPTIONS, outDir: dir, size: 16, depth: 2, base: 2 };
for (let step = 1; ; step++) {
  await saveCheckpoint(dir, model, optimizer, { step, options, classWeights: [], history: [], trainSeconds: step });
  process.stdout.write(`saved ${step}\n`);
}
