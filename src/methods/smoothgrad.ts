import * as tf from '@tensorflow/tfjs';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';
import { nonNegative, positiveInteger } from './options.js';
import { gaussianNoise, mulberry32 } from './random.js';
import { saliencyMap } from './saliency.js';
import { cachedScore } from './score.js';

export interface SmoothGradOptions {
  /** Noisy copies averaged (default 25). */
  samples?: number;
  /** Noise σ as a fraction of the input range hi − lo (default 0.15; Smilkov et al. suggest 0.1–0.2). */
  sigma?: number;
  /** Seed of the noise (default 0): the same seed gives the same map on every backend. */
  seed?: number;
  /** Noisy copies per model call (default 8). */
  batchSize?: number;
}

/** SmoothGrad (Smilkov et al. 2017): the gradient saliency map max_c |∂S/∂x| averaged over x + N(0, σ²). */
export class SmoothGrad implements ModelMethod {
  readonly name = 'smoothgrad';
  readonly target = 'input';
  readonly samples: number;
  readonly sigma: number;
  readonly seed: number;
  readonly batchSize: number;

  constructor(options: SmoothGradOptions = {}) {
    this.samples = positiveInteger(options.samples ?? 25, 'samples');
    this.sigma = nonNegative(options.sigma ?? 0.15, 'sigma');
    this.seed = options.seed ?? 0;
    this.batchSize = positiveInteger(options.batchSize ?? 8, 'batchSize');
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const [, h, w, c] = ctx.input.shape;
    const std = this.sigma * Math.abs(ctx.inputRange[1] - ctx.inputRange[0]);
    const random = mulberry32(this.seed);
    let sum = tf.zeros([h, w]) as tf.Tensor2D;
    try {
      for (let done = 0; done < this.samples;) {
        const b = Math.min(this.batchSize, this.samples - done);
        const noise = gaussianNoise(b * h * w * c, std, random);
        const batch = tf.tidy(() => tf.add(ctx.input, tf.tensor4d(noise, [b, h, w, c])) as tf.Tensor4D);
        const { gradients } = await ctx.adapter.inputGradients(batch, ctx.objective).finally(() => batch.dispose());
        const map = saliencyMap(gradients);
        const next = tf.add(sum, map) as tf.Tensor2D;
        tf.dispose([gradients, map, sum]);
        sum = next;
        done += b;
      }
    } catch (err) {
      sum.dispose();
      throw err;
    }
    const cam = tf.div(sum, this.samples) as tf.Tensor2D;
    sum.dispose();
    return { cam, weights: null, score: cachedScore(ctx) };
  }
}
