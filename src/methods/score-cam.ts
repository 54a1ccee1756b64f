import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { baselineFor, type Baseline } from './baseline.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod, type NegativeOption } from './method.js';
import { positiveInteger } from './options.js';
import { cachedScore } from './score.js';

/**
 * 'increase' (default): α_k = S(x_k) − S(b), x_k = b + H_k ⊙ (x − b), H_k upsampled with half-pixel centres,
 * the 32 channels of largest mean activation. 'pytorch-grad-cam': pytorch-grad-cam's ScoreCAM — every channel,
 * H_k upsampled with aligned corners (torch's UpsamplingBilinear2d), x_k = x ⊙ H_k, α = softmax_k S(x_k).
 */
export type ScoreCamVariant = 'increase' | 'pytorch-grad-cam';

export interface ScoreCamOptions extends NegativeOption {
  /** Channels scored: the K with the largest mean activation (default 32; every channel in the pytorch-grad-cam variant); the others get α = 0. */
  maxChannels?: number;
  /** Masked images per model call (default 16). */
  batchSize?: number;
  /** What masked-out pixels become (default 'black'; the pytorch-grad-cam variant multiplies by the mask: 0). */
  baseline?: Baseline;
  /** The definition (default 'increase'; see ScoreCamVariant). */
  variant?: ScoreCamVariant;
}

/**
 * Score-CAM (Wang et al. 2020), gradient-free: each channel A^k, upsampled to the input
 * (bilinear) and scaled to [0, 1] (H_k = (A^k − min) / (max − min)), masks the image; its weight
 * comes from the masked image's score. Default ('increase'): x_k = b + H_k ⊙ (x − b) and
 * α_k = S(x_k) − S(b), the paper's "increase of confidence" without its softmax — with S summed
 * over a region, S's differences between channels are large and the softmax turns α into a
 * one-hot. 'pytorch-grad-cam': x_k = x ⊙ H_k and α = softmax over the scored channels of S(x_k)
 * (the paper's Algorithm 1 up to its baseline term, which the softmax cancels). Map: ReLU(Σ_k α_k A^k).
 */
export class ScoreCam implements ModelMethod {
  readonly name = 'score-cam';
  readonly target = 'layer';
  readonly maxChannels: number;
  readonly batchSize: number;
  readonly baseline: Baseline;
  readonly variant: ScoreCamVariant;
  readonly negative: boolean;

  constructor(options: ScoreCamOptions = {}) {
    const variant = options.variant ?? 'increase';
    if (variant !== 'increase' && variant !== 'pytorch-grad-cam')
      throw new SegGradCamError(`unknown score-cam variant '${String(variant)}'; expected increase or pytorch-grad-cam`, 'usage');
    this.variant = variant;
    this.maxChannels =
      options.maxChannels === undefined && variant === 'pytorch-grad-cam'
        ? Number.MAX_SAFE_INTEGER
        : positiveInteger(options.maxChannels ?? 32, 'maxChannels');
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.baseline = options.baseline ?? 'black';
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    await ctx.pass.cacheActivations?.([ctx.layer.name]);
    const A = ctx.pass.activation(ctx.layer.name) as tf.Tensor4D;
    const k = A.shape[3];
    const [, H, W] = ctx.input.shape;
    const chosen = topChannels(
      tf.tidy(() => tf.mean(A, [0, 1, 2]).dataSync() as Float32Array),
      this.maxChannels,
    );
    const torch = this.variant === 'pytorch-grad-cam';
    const baseline = torch ? tf.zerosLike(ctx.input) : baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const delta = tf.sub(ctx.input, baseline);
    try {
      const sb = torch ? 0 : (await ctx.adapter.scores(baseline, ctx.objective))[0];
      const scores = new Float64Array(k);
      for (let i = 0; i < chosen.length; i += this.batchSize) {
        const some = chosen.slice(i, i + this.batchSize);
        const batch = tf.tidy(() => tf.add(baseline, tf.mul(channelMasks(A, some, H, W, torch), delta)) as tf.Tensor4D);
        const s = await ctx.adapter.scores(batch, ctx.objective).finally(() => batch.dispose());
        some.forEach((c, j) => (scores[c] = s[j] - sb));
      }
      const alpha = torch ? softmaxOver(scores, chosen) : Float32Array.from(scores);
      const weights = tf.tensor1d(alpha);
      const cam = weightedCam(A, weights, this.negative);
      return { cam, weights, score: cachedScore(ctx) };
    } finally {
      tf.dispose([baseline, delta]);
    }
  }
}

/** Softmax of `values` over the indices `over` (in float64); 0 elsewhere. */
export function softmaxOver(values: ArrayLike<number>, over: number[]): Float32Array {
  const out = new Float32Array(values.length);
  const top = Math.max(...over.map((i) => values[i]));
  let total = 0;
  for (const i of over) total += Math.exp(values[i] - top);
  for (const i of over) out[i] = Math.exp(values[i] - top) / total;
  return out;
}

/**
 * Channels of A [1,h,w,K] upsampled to H×W (bilinear: half-pixel centres, or aligned corners as torch's
 * UpsamplingBilinear2d) and min–max scaled: [n, H, W, 1] in [0, 1].
 */
function channelMasks(A: tf.Tensor4D, channels: number[], H: number, W: number, alignCorners: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const sel = tf.transpose(tf.gather(A, channels, 3), [3, 1, 2, 0]) as tf.Tensor4D;
    const up = tf.image.resizeBilinear(sel, [H, W], alignCorners, !alignCorners);
    const lo = tf.min(up, [1, 2, 3], true);
    const hi = tf.max(up, [1, 2, 3], true);
    return tf.div(tf.sub(up, lo), tf.add(tf.sub(hi, lo), 1e-8)) as tf.Tensor4D;
  });
}

/** Indices of the `count` largest values (ties: lower index first), in that order. */
export function topChannels(means: ArrayLike<number>, count: number): number[] {
  const idx = Array.from({ length: means.length }, (_, i) => i);
  idx.sort((a, b) => means[b] - means[a] || a - b);
  return idx.slice(0, Math.min(count, idx.length));
}
