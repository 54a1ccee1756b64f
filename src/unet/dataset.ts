/**
 * The tiles of a training run: the dataset its options describe, the arrays of a training batch,
 * the configuration a training worker needs, the held-out evaluation and the logits-bias calibration.
 */
import * as tf from '@tensorflow/tfjs';
import { hash32 } from '../data/prng.js';
import { NUM_CLASSES, oneHot, TextureMnist, type Split, type TextureMnistOptions } from '../data/texture-mnist.js';
import { BiasTiles } from '../data/bias-tiles.js';
import { loadTextureMnistAssets } from '../data/assets-node.js';
import { Confusion } from './metrics.js';
import type { WorkerConfig } from './parallel.js';
import type { EvalResult, TrainOptions } from './options.js';

/** What training and evaluation need of a tile set: its tile size and tiles as arrays. */
export interface TileSource {
  readonly options: { readonly size: number };
  arrays(split: Split, indices: readonly number[], flip?: readonly boolean[]): { x: Float32Array; y: Int32Array };
}

/** Builds the dataset that a set of training options describes. */
export async function datasetFor(
  o: Pick<TrainOptions, 'size' | 'seed' | 'biasDigit' | 'biasStrength' | 'biasTexture' | 'biasTextureAtZero' | 'dataset' | 'arm'>,
): Promise<TileSource> {
  if (o.dataset === 'bias')
    return new BiasTiles(await loadTextureMnistAssets(), {
      arm: o.arm,
      size: o.size,
      seed: o.seed,
      biasDigit: o.biasDigit,
      biasTexture: o.biasTexture,
    });
  const opts: TextureMnistOptions = {
    size: o.size,
    seed: o.seed,
    biasDigit: o.biasDigit,
    biasStrength: o.biasStrength,
    biasTexture: o.biasTexture,
    biasTextureAtZero: o.biasTextureAtZero,
  };
  return new TextureMnist(await loadTextureMnistAssets(), opts);
}

/**
 * The training arrays of the train tiles `idx`: x [N,H,W,3], labels y, one-hot oh [N,H,W,C] and
 * the class-weighted one-hot ow (flips, if on, are a hash of the seed and the tile index).
 */
export function trainTiles(
  data: TileSource,
  o: Pick<TrainOptions, 'flip' | 'seed'>,
  classWeights: number[],
  idx: number[],
): { x: Float32Array; y: Int32Array; oh: Float32Array; ow: Float32Array } {
  const flip = o.flip ? idx.map((i) => (hash32(o.seed, 0xf11b, i) & 1) === 1) : undefined;
  const { x, y } = data.arrays('train', idx, flip);
  const oh = oneHot(y, NUM_CLASSES);
  const ow = new Float32Array(oh.length);
  for (let i = 0; i < y.length; i++) ow[i * NUM_CLASSES + y[i]] = classWeights[y[i]];
  return { x, y, oh, ow };
}

/** What a training worker needs besides the model (src/unet/parallel.ts). */
export function workerConfig(o: TrainOptions, classWeights: number[]): WorkerConfig {
  return {
    backend: tf.getBackend(),
    data: {
      size: o.size,
      seed: o.seed,
      biasDigit: o.biasDigit,
      biasStrength: o.biasStrength,
      biasTexture: o.biasTexture,
      biasTextureAtZero: o.biasTextureAtZero,
    },
    flip: o.flip,
    seed: o.seed,
    batch: o.batch,
    classWeights,
    ceWeight: o.ceWeight,
    diceWeight: o.diceWeight,
  };
}

/** Evaluates a model on held-out tiles [first, first + tiles): per-class and mean IoU. */
export function evaluate(model: tf.LayersModel, data: TileSource, tiles: number, first = 0, batch = 32): EvalResult {
  const conf = new Confusion(NUM_CLASSES);
  const size = data.options.size;
  for (let start = 0; start < tiles; start += batch) {
    const idx: number[] = [];
    for (let i = start; i < Math.min(tiles, start + batch); i++) idx.push(first + i);
    const { x, y } = data.arrays('heldout', idx);
    const pred = tf.tidy(() => {
      const xt = tf.tensor4d(x, [idx.length, size, size, 3]);
      return tf.argMax(model.predict(xt) as tf.Tensor4D, -1);
    });
    conf.add(y, pred.dataSync());
    pred.dispose();
  }
  return { tiles, perClassIou: conf.iou(), meanIou: conf.meanIou(), pixelAccuracy: conf.accuracy() };
}

/**
 * Prior correction of the class weighting: weighted cross-entropy shifts the optimum to
 * p_w(c) ∝ w_c · p(c), which widens every digit by a pixel or so and costs IoU. Subtracting
 * alpha · log(w_c) from the bias of the `logits` layer undoes it (alpha = 1 exactly for CE alone;
 * the Dice term changes the optimum, so alpha is chosen among `alphas` by the mean IoU on held-out
 * validation tiles, indices 1e6…, disjoint from the final evaluation set). Modifies the model in
 * place and returns the chosen alpha and all scores.
 */
export function calibrateLogitsBias(
  model: tf.LayersModel,
  classWeights: number[],
  data: TileSource,
  valTiles: number,
  alphas: number[] = [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2],
): { alpha: number; scores: [number, number][] } {
  const layer = model.getLayer('logits');
  const [kernel, bias] = layer.getWeights();
  const b0 = bias.arraySync() as number[];
  const logW = classWeights.map((w) => Math.log(w));
  const setAlpha = (a: number): void => {
    const nb = tf.tensor1d(b0.map((v, c) => v - a * logW[c]));
    layer.setWeights([kernel, nb]);
    nb.dispose();
  };
  const scores: [number, number][] = [];
  for (const a of alphas) {
    setAlpha(a);
    scores.push([a, evaluate(model, data, valTiles, 1_000_000).meanIou]);
  }
  const best = scores.reduce((p, q) => (q[1] > p[1] ? q : p));
  setAlpha(best[0]);
  return { alpha: best[0], scores };
}
