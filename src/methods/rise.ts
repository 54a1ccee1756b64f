import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter, Objective } from '../engine/contract.js';
import { SegGradCamError } from '../errors.js';
import { baselineFor, type Baseline } from './baseline.js';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';
import { positiveInteger } from './options.js';
import { mulberry32 } from './random.js';
import { cachedScore } from './score.js';

export interface RiseOptions {
  /** Random masks (default 1000; one forward pass each). */
  samples?: number;
  /** Cells of the coarse binary grid per side, or [rows, cols] (default 8; at most the input size). */
  maskResolution?: number | [number, number];
  /** Probability that a grid cell keeps the image (default 0.5). */
  keepProbability?: number;
  /** Seed of the masks (default 0): the same seed gives the same masks on every backend. */
  seed?: number;
  /** Masked images per model call (default 16). */
  batchSize?: number;
  /** What masked-out pixels become (default 'black'). */
  baseline?: Baseline;
}

/**
 * RISE (Petsiuk et al. 2018), on any model: N random masks M_i ∈ [0, 1]^(H×W); each is a binary s×s grid
 * (cells kept with probability p) upsampled bilinearly to (s + 1)·⌈H/s⌉ × (s + 1)·⌈W/s⌉ and cropped at a random
 * shift within one cell. The masked image is x_i = b + M_i ⊙ (x − b) (b = 0 in the paper: black), and the saliency
 * the score-weighted mean of the masks, sal = (1 / (N·p)) Σ_i S(x_i) M_i — a Monte Carlo estimate of E[S(x ⊙ M) M] / p.
 * The map: ReLU(sal).
 */
export class Rise implements ModelMethod {
  readonly name = 'rise';
  readonly target = 'input';
  readonly samples: number;
  readonly resolution: [number, number];
  readonly keepProbability: number;
  readonly seed: number;
  readonly batchSize: number;
  readonly baseline: Baseline;

  constructor(options: RiseOptions = {}) {
    this.samples = positiveInteger(options.samples ?? 1000, 'samples');
    const r = options.maskResolution ?? 8;
    const [rows, cols] = Array.isArray(r) ? r : [r, r];
    this.resolution = [positiveInteger(rows, 'maskResolution'), positiveInteger(cols, 'maskResolution')];
    const p = options.keepProbability ?? 0.5;
    if (!(p > 0 && p <= 1)) throw new SegGradCamError(`keepProbability must be in (0, 1], got ${p}`, 'usage');
    this.keepProbability = p;
    this.seed = options.seed ?? 0;
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.baseline = options.baseline ?? 'black';
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const [, H, W] = ctx.input.shape;
    const random = mulberry32(this.seed);
    const grid: [number, number] = [Math.min(H, this.resolution[0]), Math.min(W, this.resolution[1])];
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const sum = new Float64Array(H * W);
    try {
      for (let done = 0; done < this.samples;) {
        const b = Math.min(this.batchSize, this.samples - done);
        const masks = Array.from({ length: b }, () => randomMask(H, W, grid, this.keepProbability, random));
        addWeightedMasks(sum, masks, await maskedScores(ctx.adapter, ctx.input, baseline, masks, ctx.objective));
        done += b;
      }
    } finally {
      baseline.dispose();
    }
    const norm = 1 / (this.samples * this.keepProbability);
    const cam = tf.tidy(
      () =>
        tf.relu(
          tf.tensor2d(
            Float32Array.from(sum, (v) => v * norm),
            [H, W],
          ),
        ) as tf.Tensor2D,
    );
    return { cam, weights: null, score: cachedScore(ctx) };
  }
}

/**
 * The RISE saliency for given masks (each H·W, row-major): (1 / (N·p)) Σ_i S(b + M_i ⊙ (x − b)) M_i, signed, [H·W].
 * `p` is the masks' expected value.
 */
export async function riseSaliency(
  adapter: ModelAdapter,
  input: tf.Tensor4D,
  baseline: tf.Tensor4D,
  masks: Float32Array[],
  objective: Objective,
  p: number,
  batchSize = 16,
): Promise<Float64Array> {
  const sum = new Float64Array(input.shape[1] * input.shape[2]);
  for (let i = 0; i < masks.length; i += batchSize) {
    const some = masks.slice(i, i + batchSize);
    addWeightedMasks(sum, some, await maskedScores(adapter, input, baseline, some, objective));
  }
  return sum.map((v) => v / (masks.length * p));
}

/** S(b + M_i ⊙ (x − b)) for each mask, in one batched call. */
async function maskedScores(
  adapter: ModelAdapter,
  input: tf.Tensor4D,
  baseline: tf.Tensor4D,
  masks: Float32Array[],
  objective: Objective,
): Promise<Float32Array> {
  const [, H, W] = input.shape;
  const batch = tf.tidy(() => {
    const flat = new Float32Array(masks.length * H * W);
    masks.forEach((m, i) => flat.set(m, i * H * W));
    const m = tf.tensor4d(flat, [masks.length, H, W, 1]);
    return tf.add(baseline, tf.mul(m, tf.sub(input, baseline))) as tf.Tensor4D;
  });
  return adapter.scores(batch, objective).finally(() => batch.dispose());
}

function addWeightedMasks(sum: Float64Array, masks: Float32Array[], scores: Float32Array): void {
  masks.forEach((m, i) => {
    for (let p = 0; p < sum.length; p++) sum[p] += scores[i] * m[p];
  });
}

/** One RISE mask: a binary grid drawn with P(1) = p, then `riseMask` at a random shift within one cell. */
export function randomMask(H: number, W: number, grid: [number, number], p: number, random: () => number): Float32Array {
  const [gh, gw] = grid;
  const cells = Float32Array.from({ length: gh * gw }, () => (random() < p ? 1 : 0));
  const ch = Math.ceil(H / gh);
  const cw = Math.ceil(W / gw);
  const dy = Math.floor(random() * ch);
  const dx = Math.floor(random() * cw);
  return riseMask(cells, grid, H, W, dy, dx);
}

/**
 * A grid [gh, gw] upsampled bilinearly (half-pixel centres, edges clamped) to (gh + 1)·⌈H/gh⌉ × (gw + 1)·⌈W/gw⌉,
 * then the H×W crop starting at (dy, dx): the RISE mask (H·W, row-major).
 */
export function riseMask(cells: Float32Array, grid: [number, number], H: number, W: number, dy: number, dx: number): Float32Array {
  const [gh, gw] = grid;
  const ch = Math.ceil(H / gh);
  const cw = Math.ceil(W / gw);
  const up = [(gh + 1) * ch, (gw + 1) * cw];
  // Coordinates in grid cells of a pixel centre of the upsampled image (half-pixel centres, clamped at the edges).
  const source = (i: number, n: number, outSize: number) => {
    const s = Math.min(Math.max(((i + 0.5) * n) / outSize - 0.5, 0), n - 1);
    const lo = Math.floor(s);
    return { lo, hi: Math.min(lo + 1, n - 1), t: s - lo };
  };
  const mask = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const sy = source(y + dy, gh, up[0]);
    for (let x = 0; x < W; x++) {
      const sx = source(x + dx, gw, up[1]);
      const top = cells[sy.lo * gw + sx.lo] * (1 - sx.t) + cells[sy.lo * gw + sx.hi] * sx.t;
      const bottom = cells[sy.hi * gw + sx.lo] * (1 - sx.t) + cells[sy.hi * gw + sx.hi] * sx.t;
      mask[y * W + x] = top * (1 - sy.t) + bottom * sy.t;
    }
  }
  return mask;
}
