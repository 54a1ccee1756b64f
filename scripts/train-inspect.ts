// Inspect a trained/checkpointed model: confusion matrix, foreground IoU, per-class IoU on held-out tiles.
//   node --import tsx scripts/train-inspect.ts DIR [tiles] [biasStrength] [unused|uniform]
// With biasStrength 0 and 'uniform', brick backgrounds appear under every digit: a model that
// learnt the shortcut "brick → 3" then labels other digits on brick as 3 (shown separately).
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { createTextureMnist } from '../src/data/assets-node.js';
import { NUM_CLASSES } from '../src/data/texture-mnist.js';
import { Confusion } from '../src/unet/metrics.js';
import { loadModelDir } from '../src/unet/train.js';
await setupBackend('wasm');
const dir = process.argv[2];
const tiles = Number(process.argv[3] ?? 200);
const model = await loadModelDir(dir);
const ds = await createTextureMnist({
  size: model.inputs[0].shape[1] as number,
  biasStrength: Number(process.argv[4] ?? 1),
  biasTextureAtZero: process.argv[5] === 'uniform' ? 'uniform' : 'unused',
});
const onBias = new Confusion(NUM_CLASSES);
const conf = new Confusion(NUM_CLASSES);
const fg = new Confusion(2);
for (let s = 0; s < tiles; s += 32) {
  const idx = Array.from({ length: Math.min(32, tiles - s) }, (_, i) => s + i);
  const { x, y } = ds.arrays('heldout', idx);
  const p = tf.tidy(() =>
    tf.argMax(model.predict(tf.tensor4d(x, [idx.length, ds.options.size, ds.options.size, 3])) as tf.Tensor, -1).dataSync(),
  );
  conf.add(y, p);
  const size = ds.options.size * ds.options.size;
  idx.forEach((tile, b) => {
    if (ds.sample('heldout', tile).backgroundTexture === ds.options.biasTexture)
      onBias.add(y.subarray(b * size, (b + 1) * size), p.subarray(b * size, (b + 1) * size));
  });
  fg.add(
    Array.from(y, (v) => (v > 0 ? 1 : 0)),
    Array.from(p, (v) => (v > 0 ? 1 : 0)),
  );
}
console.log(
  'per-class IoU',
  conf
    .iou()
    .map((v) => v.toFixed(3))
    .join(' '),
  'mean',
  conf.meanIou().toFixed(3),
);
console.log(
  'fg/bg IoU',
  fg
    .iou()
    .map((v) => v.toFixed(3))
    .join(' '),
);
const k = NUM_CLASSES;
const biasClass = ds.options.biasDigit + 1;
let digitPx = 0;
let asBias = 0;
for (let r = 1; r < k; r++) {
  if (r === biasClass) continue;
  for (let c = 0; c < k; c++) digitPx += onBias.counts[r * k + c];
  asBias += onBias.counts[r * k + biasClass];
}
console.log(
  `tiles with the bias background: pixels of other digits labelled as the bias digit: ${asBias}/${digitPx} (${((100 * asBias) / Math.max(1, digitPx)).toFixed(1)} %)`,
);
for (let r = 0; r < k; r++)
  console.log(
    String(r).padStart(2),
    Array.from(conf.counts.slice(r * k, r * k + k))
      .map((v) => String(v).padStart(7))
      .join(''),
  );
