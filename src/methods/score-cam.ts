import * as tf from '@tensorflow/tfjs';
import { baselineFor, type Baseline } from './baseline.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod } from './method.js';
import { positiveInteger } from './options.js';
import { cachedScore } from './score.js';

export interface ScoreCamOptions {
  /** Channels scored: the K with the largest mean activation (default 32); the others get α = 0. */
  maxChannels?: number;
  /** Masked images per model call (default 16). */
  batchSize?: number;
  /** What masked-out pixels become (default 'black'). */
  baseline?: Baseline;
}

/**
 * Score-CAM (Wang et al. 2020), gradient-free: each channel A^k, upsampled to the input
 * (bilinear, half-pixel centres) and scaled to [0, 1], masks the image,
 * x_k = b + H_k ⊙ (x − b); its weight is the score increase over the baseline,
 * α_k = S(x_k) − S(b). Map: ReLU(Σ_k α_k A^k). (pytorch-grad-cam softmaxes the scores
 * instead; with S summed over a region that saturates, so we keep the paper's increase.)
 */
export class ScoreCam implements ModelMethod {
  readonly name = 'score-cam';
  readonly target = 'layer';
  readonly maxChannels: number;
  readonly batchSize: number;
  readonly baseline: Baseline;

  constructor(options: ScoreCamOptions = {}) {
    this.maxChannels = positiveInteger(options.maxChannels ?? 32, 'maxChannels');
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.baseline = options.baseline ?? 'black';
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
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const delta = tf.sub(ctx.input, baseline);
    try {
      const sb = (await ctx.adapter.scores(baseline, ctx.objective))[0];
      const alpha = new Float32Array(k);
      for (let i = 0; i < chosen.length; i += this.batchSize) {
        const some = chosen.slice(i, i + this.batchSize);
        const batch = tf.tidy(() => tf.add(baseline, tf.mul(channelMasks(A, some, H, W), delta)) as tf.Tensor4D);
        const s = await ctx.adapter.scores(batch, ctx.objective).finally(() => batch.dispose());
        some.forEach((c, j) => (alpha[c] = s[j] - sb));
      }
      const weights = tf.tensor1d(alpha);
      const cam = weightedCam(A, weights);
      return { cam, weights, score: cachedScore(ctx) };
    } finally {
      tf.dispose([baseline, delta]);
    }
  }
}

/** Channels of A [1,h,w,K] upsampled to H×W (bilinear, half-pixel centres) and min–max scaled: [n, H, W, 1] in [0, 1]. */
function channelMasks(A: tf.Tensor4D, channels: number[], H: number, W: number): tf.Tensor4D {
  return tf.tidy(() => {
    const sel = tf.transpose(tf.gather(A, channels, 3), [3, 1, 2, 0]) as tf.Tensor4D;
    const up = tf.image.resizeBilinear(sel, [H, W], false, true);
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
