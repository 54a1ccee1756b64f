/** The options, progress and result types of a training run, their defaults and their validation. */
import { SegGradCamError } from '../errors.js';
import type { TextureName } from '../data/textures.js';
import { isBiasArm, type BiasArm } from '../data/bias-tiles.js';
import { MAX_TRAIN_WORKERS } from './parallel.js';

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
  /**
   * The tiles: 'texture-mnist' (default; 1–3 digits per tile, src/data/texture-mnist.ts) or 'bias'
   * (one digit per tile, the bias texture on half the background, src/data/bias-tiles.ts; `arm`
   * picks the bias arm and the bias-strength options do not apply).
   */
  dataset?: 'texture-mnist' | 'bias';
  /** With dataset 'bias': strong, weak, none or control. */
  arm?: BiasArm;
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
  /** `dir` as given to --resume; `checkpoint` the complete checkpoint folder read from it. */
  resumedFrom?: { dir: string; step: number; checkpoint: string };
  classWeights: number[];
  /** The prior correction applied to the logits bias, if any. */
  calibration?: { alpha: number; validationMeanIouByAlpha: [number, number][]; validationTiles: number };
  history: { step: number; loss: number; runningIou: number; lr: number; valIou?: number; seconds: number }[];
  backend: string;
  params: number;
}

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
  if (o.dataset !== undefined && o.dataset !== 'texture-mnist' && o.dataset !== 'bias')
    throw new SegGradCamError(`dataset must be texture-mnist or bias (got ${String(o.dataset)})`, 'usage');
  if (o.dataset === 'bias') {
    if (o.arm === undefined || !isBiasArm(o.arm))
      throw new SegGradCamError(`the bias dataset needs an arm: strong, weak, none or control (got ${String(o.arm)})`, 'usage');
    if (workers > 1) throw new SegGradCamError('the bias dataset trains in one thread (workers 1)', 'usage');
    if (o.flip) throw new SegGradCamError('the bias dataset has no flips (the bias half would move)', 'usage');
  }
  if (o.size % 2 ** o.depth !== 0) throw new SegGradCamError(`size ${o.size} must be divisible by 2^depth = ${2 ** o.depth}`, 'usage');
}
