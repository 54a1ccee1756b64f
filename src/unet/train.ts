/**
 * Training of the project's U-Net on the TextureMNIST-style set (Node: checkpoints go to disk).
 *
 * Recipe (see docs/training.md): Adam, linear warm-up then cosine decay of the learning rate,
 * class-weighted softmax cross-entropy plus soft Dice (plain cross-entropy stays at "all
 * background" for a long time: ~88 % of the pixels are background), batch norm, and an endless
 * stream of fresh tiles (tile i of step s is train tile s * batch + i, so a resumed run sees the
 * same data as an uninterrupted one). Left-right flips are optional and off by default (a mirrored
 * digit is not a digit).
 *
 * Checkpoints (every `checkpointEvery` steps, and at the end) hold model.json + weights.bin, the
 * Adam state (optimizer.json + optimizer.bin: iteration count, first and second moments, so a
 * resumed run continues exactly, up to float summation order) and state.json (step, options).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { writeFileAtomic } from '../io/files.js';
import { readModelArtifacts } from '../engine/tfjs/load-node.js';
import { hash32 } from '../data/prng.js';
import { CLASS_NAMES, NUM_CLASSES, oneHot, TextureMnist, type TextureMnistOptions } from '../data/texture-mnist.js';
import { loadTextureMnistAssets } from '../data/assets-node.js';
import type { TextureName } from '../data/textures.js';
import { buildUnet } from './build.js';
import { Confusion, meanDefined } from './metrics.js';
import { DataParallelPool, MAX_TRAIN_WORKERS, type WorkerConfig } from './parallel.js';

export interface TrainOptions {
  /** Output directory (model.json, weights.bin, training.json, checkpoint/). */
  outDir: string;
  steps: number;
  batch: number;
  /** Tile size (square). */
  size: number;
  depth: number;
  base: number;
  batchNorm: boolean;
  /** Peak learning rate (Adam). */
  lr: number;
  /** Linear warm-up from lr/10 over this many steps. */
  warmupSteps: number;
  /** Learning rate at the end of the cosine decay, as a fraction of lr. */
  minLrFactor: number;
  /** Weight of the class-weighted cross-entropy term. */
  ceWeight: number;
  /** Weight of the soft Dice term (1 - mean Dice over the 11 classes). */
  diceWeight: number;
  /** Class weight = frequency^-power, normalised to mean pixel weight 1 (0 = unweighted). */
  classWeightPower: number;
  biasDigit: number;
  biasStrength: number;
  biasTexture: TextureName;
  biasTextureAtZero: 'unused' | 'uniform';
  /** Seeds the weights, the data stream and the flips. */
  seed: number;
  flip: boolean;
  checkpointEvery: number;
  /** Held-out tiles for the final evaluation (held-out tile indices 0..evalTiles-1). */
  evalTiles: number;
  /** Held-out validation tiles evaluated at each checkpoint (indices from 1e6, disjoint from the final set); 0 = none. */
  valTiles: number;
  /** Resume from this checkpoint directory (weights, Adam state, step). */
  resume?: string;
  /**
   * Optional wall-time budget for the training steps, in seconds (evaluation excluded). The
   * schedule then runs on progress = max(step / steps, trainSeconds / budget) and training stops
   * when progress reaches 1, so a slow or shared machine still gets a complete cosine decay.
   */
  timeBudgetSeconds?: number;
  /**
   * After training, correct the logits bias for the class weighting (see calibrateLogitsBias),
   * with alpha chosen on max(valTiles, 200) validation tiles. Checkpoints stay uncorrected.
   */
  calibrate?: boolean;
  /**
   * Start from the weights of this model directory (model.json + weights.bin, e.g. a checkpoint)
   * instead of a fresh initialisation: fine-tuning with a fresh Adam state from step 0. The
   * architecture options are then those of that model.
   */
  initFrom?: string;
  /**
   * Training worker threads (default 1 = the in-process loop). n > 1: data-parallel steps, each
   * worker computes the gradients of a contiguous shard of the batch with its own backend and
   * data generator; the main thread averages them and applies Adam (src/unet/parallel.ts).
   */
  workers?: number;
}

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, 'outDir'> = {
  steps: 3000,
  batch: 8,
  size: 64,
  depth: 4,
  base: 8,
  batchNorm: true,
  lr: 3e-3,
  warmupSteps: 100,
  minLrFactor: 0.02,
  ceWeight: 1,
  diceWeight: 1,
  classWeightPower: 0.5,
  biasDigit: 3,
  biasStrength: 1,
  biasTexture: 'brick',
  biasTextureAtZero: 'unused',
  seed: 1,
  flip: false,
  checkpointEvery: 500,
  evalTiles: 1000,
  valTiles: 200,
  calibrate: true,
  workers: 1,
};

export interface TrainProgress {
  phase: 'train' | 'eval' | 'checkpoint' | 'done';
  step: number;
  totalSteps: number;
  /** Mean loss over the recent steps. */
  loss: number;
  lr: number;
  /** Mean IoU from a running (decayed) confusion matrix of the training batches' predictions. */
  runningIou: number;
  stepsPerSecond: number;
  /** Seconds left for the remaining steps at the current speed. */
  etaSeconds: number;
  /** Latest validation mean IoU (at checkpoints), if any. */
  valIou?: number;
}

export interface EvalResult {
  tiles: number;
  /** Per-class IoU, index = class (0 = background, k + 1 = digit k). */
  perClassIou: number[];
  meanIou: number;
  pixelAccuracy: number;
}

export interface TrainResult {
  options: TrainOptions;
  steps: number;
  finalLoss: number;
  eval: EvalResult;
  wallSeconds: number;
  trainSeconds: number;
  stepsPerSecond: number;
  resumedFrom?: { dir: string; step: number };
  classWeights: number[];
  /** The prior correction applied to the logits bias, if any. */
  calibration?: { alpha: number; validationMeanIouByAlpha: [number, number][]; validationTiles: number };
  history: { step: number; loss: number; runningIou: number; lr: number; valIou?: number; seconds: number }[];
  backend: string;
  params: number;
}

/**
 * Learning rate at a step: linear warm-up from lr/10 over warmupSteps, then cosine decay to
 * lr * minLrFactor at the end. `progress` (0..1, default step / steps) is the position in the run.
 */
export function learningRate(
  step: number,
  o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'minLrFactor' | 'steps'>,
  progress?: number,
): number {
  if (step < o.warmupSteps) return o.lr * (0.1 + (0.9 * step) / o.warmupSteps);
  const p = progress ?? step / o.steps;
  const p0 = o.warmupSteps / o.steps;
  const t = Math.min(1, Math.max(0, (p - p0) / Math.max(1e-9, 1 - p0)));
  const min = o.lr * o.minLrFactor;
  return min + (o.lr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Class weights frequency^-power normalised so that the mean weight per pixel is 1. */
export function classWeightsFromFrequencies(freq: number[], power: number): number[] {
  const w = freq.map((f) => Math.min(1e3, Math.pow(Math.max(f, 1e-6), -power)));
  const mean = freq.reduce((s, f, c) => s + f * w[c], 0);
  return w.map((v) => v / mean);
}

/**
 * Segmentation loss: ceWeight * class-weighted softmax cross-entropy + diceWeight * (1 - mean soft
 * Dice). `yOneHot` [N,H,W,C]; `yWeighted` = yOneHot * classWeight[c] (made in JS, no broadcast).
 */
export function segmentationLoss(
  logits: tf.Tensor4D,
  yOneHot: tf.Tensor4D,
  yWeighted: tf.Tensor4D,
  ceWeight: number,
  diceWeight: number,
): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    let loss: tf.Scalar = tf.scalar(0);
    if (ceWeight > 0) {
      const ce = tf.div(tf.neg(tf.sum(tf.mul(yWeighted, logp))), tf.sum(yWeighted)) as tf.Scalar;
      loss = tf.add(loss, tf.mul(ce, ceWeight));
    }
    if (diceWeight > 0) {
      const p = tf.exp(logp);
      const inter = tf.sum(tf.mul(p, yOneHot), [0, 1, 2]);
      const denom = tf.add(tf.sum(p, [0, 1, 2]), tf.sum(yOneHot, [0, 1, 2]));
      const dice = tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(denom, 1));
      loss = tf.add(loss, tf.mul(tf.sub(1, tf.mean(dice)), diceWeight));
    }
    return loss;
  });
}

/** Builds the dataset that a set of training options describes. */
export async function datasetFor(
  o: Pick<TrainOptions, 'size' | 'seed' | 'biasDigit' | 'biasStrength' | 'biasTexture' | 'biasTextureAtZero'>,
): Promise<TextureMnist> {
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
  data: TextureMnist,
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
export function evaluate(model: tf.LayersModel, data: TextureMnist, tiles: number, first = 0, batch = 32): EvalResult {
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
  data: TextureMnist,
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

function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}

// ---------------------------------------------------------------- saving and loading

/** Serialises a model to { model.json text, weights bytes } in the standard TF.js layout. */
export async function serializeModel(
  model: tf.LayersModel,
  metadata?: Record<string, unknown>,
  weightsFile = 'weights.bin',
): Promise<{ json: string; weights: Uint8Array }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts) throw new Error('model.save produced no artifacts');
  const data = artifacts.weightData;
  const joined = data === undefined ? new ArrayBuffer(0) : Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  const json = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs} (seg-grad-cam train)`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
    ...(metadata ? { userDefinedMetadata: metadata } : {}),
  };
  return { json: JSON.stringify(json), weights: new Uint8Array(joined) };
}

/** Writes model.json + weights.bin into `dir` (each atomically: weights first, so a model.json never points at missing weights). */
export async function saveModelDir(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { json, weights } = await serializeModel(model, metadata);
  await writeFileAtomic(join(dir, 'weights.bin'), weights);
  await writeFileAtomic(join(dir, 'model.json'), new TextEncoder().encode(json));
}

/** Loads a model.json + weights written by saveModelDir. */
export async function loadModelDir(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(join(dir, 'model.json'))));
}

/** userDefinedMetadata written into model.json: class names (read by the CLI) and the data recipe. */
export function modelMetadata(o: TrainOptions): Record<string, unknown> {
  return {
    classNames: [...CLASS_NAMES],
    inputRange: [0, 1],
    dataset: {
      name: 'texture-mnist (seg-grad-cam)',
      size: o.size,
      seed: o.seed,
      biasDigit: o.biasDigit,
      biasClass: o.biasDigit + 1,
      biasTexture: o.biasTexture,
      biasStrength: o.biasStrength,
      biasTextureAtZero: o.biasTextureAtZero,
    },
  };
}

interface CheckpointState {
  step: number;
  options: TrainOptions;
  classWeights: number[];
  history: TrainResult['history'];
  trainSeconds: number;
}

async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.AdamOptimizer, state: CheckpointState): Promise<void> {
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await saveModelDir(model, tmp, modelMetadata(state.options));
  const named = await optimizer.getWeights();
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeFile(join(tmp, 'optimizer.bin'), new Uint8Array(data));
  await writeFile(join(tmp, 'optimizer.json'), JSON.stringify(specs));
  await writeFile(join(tmp, 'state.json'), JSON.stringify(state, null, 1));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

async function loadCheckpoint(
  dir: string,
): Promise<{ model: tf.LayersModel; optimizerWeights: { name: string; tensor: tf.Tensor }[]; state: CheckpointState }> {
  let state: CheckpointState;
  try {
    state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as CheckpointState;
  } catch {
    throw new SegGradCamError(`not a training checkpoint (no readable state.json): ${dir}`, 'file');
  }
  const model = await loadModelDir(dir);
  const specs = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = await readFile(join(dir, 'optimizer.bin'));
  const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  return { model, optimizerWeights: specs.map((s) => ({ name: s.name, tensor: map[s.name] })), state };
}

/** Reads the options stored in a checkpoint (for a CLI to merge with explicit flags). */
export async function checkpointOptions(dir: string): Promise<TrainOptions> {
  try {
    return (JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as CheckpointState).options;
  } catch {
    throw new SegGradCamError(`not a training checkpoint (no readable state.json): ${dir}`, 'file');
  }
}

// ---------------------------------------------------------------- the loop

export function validateTrainOptions(o: TrainOptions): void {
  const posInt = (v: number, name: string): void => {
    if (!Number.isInteger(v) || v < 1) throw new SegGradCamError(`${name} must be a positive integer (got ${v})`, 'usage');
  };
  posInt(o.steps, 'steps');
  posInt(o.batch, 'batch');
  posInt(o.checkpointEvery, 'checkpoint interval');
  if (!Number.isInteger(o.evalTiles) || o.evalTiles < 0) throw new SegGradCamError(`eval tiles must be >= 0 (got ${o.evalTiles})`, 'usage');
  if (!(o.lr > 0 && o.lr < 1)) throw new SegGradCamError(`learning rate must be in (0, 1) (got ${o.lr})`, 'usage');
  if (!(o.biasStrength >= 0 && o.biasStrength <= 1))
    throw new SegGradCamError(`bias strength must be in 0..1 (got ${o.biasStrength})`, 'usage');
  if (!Number.isInteger(o.biasDigit) || o.biasDigit < 0 || o.biasDigit > 9)
    throw new SegGradCamError(`bias digit must be 0..9 (got ${o.biasDigit})`, 'usage');
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_TRAIN_WORKERS)
    throw new SegGradCamError(`workers must be an integer in 1..${MAX_TRAIN_WORKERS} (got ${workers})`, 'usage');
  if (workers > o.batch)
    throw new SegGradCamError(
      `workers (${workers}) must not exceed the batch (${o.batch}): each worker takes a shard of the batch`,
      'usage',
    );
  if (o.size % 2 ** o.depth !== 0) throw new SegGradCamError(`size ${o.size} must be divisible by 2^depth = ${2 ** o.depth}`, 'usage');
}

/**
 * Trains (or resumes) a U-Net; writes checkpoints to outDir/checkpoint and the final model to
 * outDir (model.json, weights.bin). Returns the metrics; the caller writes training.json.
 */
export async function trainUnet(options: TrainOptions, onProgress?: (p: TrainProgress) => void): Promise<TrainResult> {
  const t0 = performance.now();
  const o: TrainOptions = { ...options, outDir: resolve(options.outDir), workers: options.workers ?? 1 };
  validateTrainOptions(o);
  const data = await datasetFor(o);
  const size = o.size;

  let model: tf.LayersModel;
  let startStep = 0;
  let history: TrainResult['history'] = [];
  let priorSeconds = 0;
  let classWeights: number[];
  const optimizer = tf.train.adam(learningRate(0, o));
  let resumedFrom: TrainResult['resumedFrom'];
  if (o.resume) {
    const ck = await loadCheckpoint(o.resume);
    model = ck.model;
    startStep = ck.state.step;
    history = ck.state.history;
    priorSeconds = ck.state.trainSeconds;
    classWeights = ck.state.classWeights;
    await optimizer.setWeights(ck.optimizerWeights);
    resumedFrom = { dir: resolve(o.resume), step: startStep };
  } else {
    model = o.initFrom
      ? await loadModelDir(o.initFrom)
      : buildUnet({
          inputSize: [size, size],
          channels: 3,
          classes: NUM_CLASSES,
          depth: o.depth,
          base: o.base,
          batchNorm: o.batchNorm,
          seed: o.seed,
        });
    const inShape = model.inputs[0].shape;
    if (inShape[1] !== size || inShape[2] !== size)
      throw new SegGradCamError(`--init-from model takes ${inShape[1]}x${inShape[2]} tiles, not ${size}x${size}`, 'usage');
    // class frequencies from 256 training tiles far from the training stream's start
    const freqConf = new Confusion(NUM_CLASSES);
    const idx = Array.from({ length: 256 }, (_, i) => 2_000_000_000 + i);
    const { y } = data.arrays('train', idx);
    freqConf.add(y, y);
    const total = y.length;
    const freq = Array.from({ length: NUM_CLASSES }, (_, c) => freqConf.counts[c * NUM_CLASSES + c] / total);
    classWeights = classWeightsFromFrequencies(freq, o.classWeightPower);
  }
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const checkpointDir = join(o.outDir, 'checkpoint');
  await mkdir(o.outDir, { recursive: true });

  const running = new Confusion(NUM_CLASSES);
  const recentLoss: number[] = [];
  let lastLoss = NaN;
  let valIou: number | undefined;
  let trainMs = 0;

  const report = (phase: TrainProgress['phase'], step: number, lr: number): void => {
    const done = step - startStep;
    const sps = done > 0 ? done / (trainMs / 1000) : 0;
    onProgress?.({
      phase,
      step,
      totalSteps: o.steps,
      loss: recentLoss.length ? recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length : NaN,
      lr,
      runningIou: running.meanIou(),
      stepsPerSecond: sps,
      etaSeconds: o.timeBudgetSeconds
        ? Math.max(0, Math.min(sps > 0 ? (o.steps - step) / sps : Infinity, o.timeBudgetSeconds - priorSeconds - trainMs / 1000))
        : sps > 0
          ? (o.steps - step) / sps
          : NaN,
      valIou,
    });
  };

  const progressAt = (step: number): number =>
    o.timeBudgetSeconds ? Math.max(step / o.steps, (priorSeconds + trainMs / 1000) / o.timeBudgetSeconds) : step / o.steps;
  const workers = o.workers ?? 1;
  // workers > 1: data-parallel steps in worker threads (src/unet/parallel.ts); 1 = the in-process loop below
  const pool = workers > 1 ? await DataParallelPool.start(model, workerConfig(o, classWeights), workers) : undefined;
  let finalStep = startStep;
  try {
    for (let step = startStep; step < o.steps; step++) {
      if (step > startStep && progressAt(step) >= 1) break;
      const ts = performance.now();
      const lr = learningRate(step, o, progressAt(step));
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const idx = Array.from({ length: o.batch }, (_, i) => step * o.batch + i);
      if (pool) {
        // data-parallel step (workers > 1): see src/unet/parallel.ts
        const r = await pool.step(idx, model);
        lastLoss = r.loss;
        if (!Number.isFinite(lastLoss)) throw new Error(`training diverged at step ${step} (loss ${lastLoss}); try a lower --lr`);
        const named = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(r.grads[i], v.shape, 'float32') }));
        optimizer.applyGradients(named);
        tf.dispose(named.map((g) => g.tensor));
        running.decay(0.97);
        for (let i = 0; i < r.confusion.length; i++) running.counts[i] += r.confusion[i];
      } else {
        const { x, y, oh, ow } = trainTiles(data, o, classWeights, idx);
        const xt = tf.tensor4d(x, [o.batch, size, size, 3]);
        const yt = tf.tensor4d(oh, [o.batch, size, size, NUM_CLASSES]);
        const wt = tf.tensor4d(ow, [o.batch, size, size, NUM_CLASSES]);
        let pred: tf.Tensor | undefined;
        const lossT = optimizer.minimize(
          () => {
            const logits = model.apply(xt, { training: true }) as tf.Tensor4D;
            pred = tf.keep(tf.argMax(logits, -1));
            return segmentationLoss(logits, yt, wt, o.ceWeight, o.diceWeight);
          },
          true,
          vars,
        ) as tf.Scalar;
        lastLoss = (await lossT.data())[0];
        const p = pred ? pred.dataSync() : new Int32Array(y.length);
        tf.dispose([lossT, xt, yt, wt, pred as tf.Tensor]);
        if (!Number.isFinite(lastLoss)) throw new Error(`training diverged at step ${step} (loss ${lastLoss}); try a lower --lr`);
        running.decay(0.97).add(y, p);
      }
      recentLoss.push(lastLoss);
      if (recentLoss.length > 20) recentLoss.shift();
      trainMs += performance.now() - ts;
      const s = step + 1;
      finalStep = s;
      if (s % 10 === 0 || s === o.steps) report('train', s, lr);
      if (o.timeBudgetSeconds && progressAt(s) >= 1) break;
      if (s % 50 === 0)
        history.push({
          step: s,
          loss: recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length,
          runningIou: running.meanIou(),
          lr,
          seconds: (priorSeconds * 1000 + trainMs) / 1000,
        });
      if (s % o.checkpointEvery === 0 && s < o.steps) {
        if (o.valTiles > 0) {
          report('eval', s, lr);
          valIou = evaluate(model, data, o.valTiles, 1_000_000).meanIou;
          if (history.length) history[history.length - 1].valIou = valIou;
        }
        report('checkpoint', s, lr);
        await saveCheckpoint(checkpointDir, model, optimizer, {
          step: s,
          options: o,
          classWeights,
          history,
          trainSeconds: priorSeconds + trainMs / 1000,
        });
      }
    }
  } finally {
    await pool?.close();
  }
  const trainSeconds = priorSeconds + trainMs / 1000;
  const endLr = learningRate(finalStep, o, progressAt(finalStep));
  await saveCheckpoint(checkpointDir, model, optimizer, { step: finalStep, options: o, classWeights, history, trainSeconds });
  let calibration: TrainResult['calibration'];
  if (o.calibrate ?? true) {
    report('eval', finalStep, endLr);
    const valTiles = Math.max(o.valTiles, 200);
    const { alpha, scores } = calibrateLogitsBias(model, classWeights, data, valTiles);
    calibration = { alpha, validationMeanIouByAlpha: scores, validationTiles: valTiles };
  }
  await saveModelDir(model, o.outDir, { ...modelMetadata(o), ...(calibration ? { logitsPriorCorrection: calibration.alpha } : {}) });
  report('eval', finalStep, endLr);
  const ev = o.evalTiles > 0 ? evaluate(model, data, o.evalTiles, 0) : { tiles: 0, perClassIou: [], meanIou: NaN, pixelAccuracy: NaN };
  report('done', finalStep, endLr);
  const doneSteps = finalStep - startStep;
  const result: TrainResult = {
    options: o,
    steps: finalStep,
    finalLoss: lastLoss,
    eval: ev,
    wallSeconds: (performance.now() - t0) / 1000,
    trainSeconds,
    stepsPerSecond: doneSteps > 0 ? doneSteps / (trainMs / 1000) : NaN,
    resumedFrom,
    classWeights,
    calibration,
    history,
    backend: tf.getBackend(),
    params: countParams(model),
  };
  optimizer.dispose();
  model.dispose();
  return result;
}

export { meanDefined };
