import * as tf from '@tensorflow/tfjs';
import { baselineFor, type Baseline } from './baseline.js';
import type { MethodContext, MethodResult, ModelMethod, NegativeOption } from './method.js';
import { positiveInteger } from './options.js';
import { cachedScore } from './score.js';

export interface OcclusionOptions extends NegativeOption {
  /** Side of the square window, in model-input pixels (default ⌈min(H, W)/8⌉). */
  window?: number;
  /** Step between windows (default: the window, so windows tile the input and a pixel's attribution is its window's drop). */
  stride?: number;
  /** What occluded pixels become (default 'black'). */
  baseline?: Baseline;
  /** Occluded images per model call (default 16). */
  batchSize?: number;
}

/**
 * Occlusion sensitivity (Zeiler & Fergus 2014), on any model: a window slides over the model input with a stride;
 * each position replaces the window by the baseline, x_w = x ⊙ (1 − m_w) + b ⊙ m_w, and the score drop
 * S(x) − S(x_w) is spread over the window's pixels. A pixel's attribution is the mean drop of the windows that cover
 * it (Captum's Occlusion does the same). The last window of a row or column is moved to touch the edge so every
 * pixel is covered. The map: ReLU(attribution) (negative: ReLU(−attribution): occluding there raises S).
 */
export class Occlusion implements ModelMethod {
  readonly name = 'occlusion';
  readonly target = 'input';
  readonly window: number | undefined;
  readonly stride: number | undefined;
  readonly baseline: Baseline;
  readonly batchSize: number;
  readonly negative: boolean;

  constructor(options: OcclusionOptions = {}) {
    this.window = options.window === undefined ? undefined : positiveInteger(options.window, 'window');
    this.stride = options.stride === undefined ? undefined : positiveInteger(options.stride, 'stride');
    this.baseline = options.baseline ?? 'black';
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const attribution = await this.attribution(ctx);
    const cam = tf.tidy(() => tf.relu(this.negative ? tf.neg(attribution) : attribution) as tf.Tensor2D);
    attribution.dispose();
    return { cam, weights: null, score: cachedScore(ctx) };
  }

  /** The signed attribution [H, W]: the mean score drop of the windows covering each pixel. */
  async attribution(ctx: MethodContext): Promise<tf.Tensor2D> {
    const [, H, W] = ctx.input.shape;
    const win = Math.min(this.window ?? Math.ceil(Math.min(H, W) / 8), H, W);
    const stride = this.stride ?? win;
    const windows = windowStarts(H, win, stride).flatMap((y) => windowStarts(W, win, stride).map((x) => [y, x] as const));
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const delta = tf.sub(baseline, ctx.input);
    const sum = new Float64Array(H * W);
    const count = new Float64Array(H * W);
    try {
      const s0 = (await ctx.adapter.scores(ctx.input, ctx.objective))[0];
      for (let i = 0; i < windows.length; i += this.batchSize) {
        const some = windows.slice(i, i + this.batchSize);
        const masks = new Float32Array(some.length * H * W);
        some.forEach(([y0, x0], b) => {
          for (let y = y0; y < y0 + win; y++) masks.fill(1, b * H * W + y * W + x0, b * H * W + y * W + x0 + win);
        });
        const batch = tf.tidy(() => tf.add(ctx.input, tf.mul(tf.tensor4d(masks, [some.length, H, W, 1]), delta)) as tf.Tensor4D);
        const scores = await ctx.adapter.scores(batch, ctx.objective).finally(() => batch.dispose());
        some.forEach(([y0, x0], b) => {
          const drop = s0 - scores[b];
          for (let y = y0; y < y0 + win; y++)
            for (let x = x0; x < x0 + win; x++) {
              sum[y * W + x] += drop;
              count[y * W + x] += 1;
            }
        });
      }
    } finally {
      tf.dispose([baseline, delta]);
    }
    return tf.tensor2d(
      Float32Array.from(sum, (s, p) => (count[p] > 0 ? s / count[p] : 0)),
      [H, W],
    );
  }
}

/** Window starts 0, s, 2s, … up to size − window, plus size − window when the strides miss the edge. */
export function windowStarts(size: number, window: number, stride: number): number[] {
  const starts: number[] = [];
  for (let y = 0; y + window <= size; y += stride) starts.push(y);
  if (starts[starts.length - 1] !== size - window) starts.push(size - window);
  return starts;
}
