import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { baselineFor, type Baseline } from './baseline.js';
import type { MethodContext, MethodResult, ModelMethod, NegativeOption } from './method.js';
import { nonNegative, positiveInteger } from './options.js';
import { mulberry32 } from './random.js';
import { cachedScore } from './score.js';
import { coalitions, constrainedShapley } from './shapley-regression.js';
import { segment, type Segmentation, type Segments } from './superpixels.js';

export interface KernelShapOptions extends NegativeOption {
  /** How pixels are grouped into features (default 'slic'). */
  segmentation?: Segmentation;
  /** About how many segments (default 50). */
  segments?: number;
  /** SLIC compactness m (default 10, as skimage; larger: squarer segments). */
  compactness?: number;
  /** Coalitions evaluated (default 2·M + 2048, as shap's 'auto'; at least 2·M; every one when 2^M − 2 fit, which is then exact). */
  samples?: number;
  /** Seed of the coalitions (default 0). */
  seed?: number;
  /** Masked images per model call (default 16). */
  batchSize?: number;
  /** What a segment left out of a coalition becomes (default 'blurred'; 'mean': the image's mean colour). */
  baseline?: Baseline;
}

/**
 * KernelSHAP on superpixels (Lundberg & Lee 2017), on any model: the model input is cut into M segments (SLIC or a
 * grid, ./superpixels.ts); a coalition z ∈ {0,1}^M keeps the segments with z_i = 1 and replaces the others by the
 * baseline, f(z) = S(b + mask(z) ⊙ (x − b)). The attributions φ minimise Σ_z π(z)(f(z) − f(∅) − z·φ)² under the
 * efficiency constraint Σφ = f(1) − f(∅) = S(x) − S(b), π the Shapley kernel (./shapley-regression.ts). Every pixel
 * carries its segment's φ; the map is ReLU(φ) (negative: ReLU(−φ)). With all 2^M − 2 coalitions evaluated the φ are
 * the exact Shapley values of the segment game.
 */
export class KernelShap implements ModelMethod {
  readonly name = 'kernel-shap';
  readonly target = 'input';
  readonly segmentation: Segmentation;
  readonly segments: number;
  readonly compactness: number;
  readonly samples: number | undefined;
  readonly seed: number;
  readonly batchSize: number;
  readonly baseline: Baseline;
  readonly negative: boolean;

  constructor(options: KernelShapOptions = {}) {
    this.segmentation = options.segmentation ?? 'slic';
    if (this.segmentation !== 'slic' && this.segmentation !== 'grid')
      throw new SegGradCamError(`unknown segmentation '${String(this.segmentation)}'; expected slic or grid`, 'usage');
    this.segments = positiveInteger(options.segments ?? 50, 'segments');
    this.compactness = nonNegative(options.compactness ?? 10, 'compactness');
    this.samples = options.samples === undefined ? undefined : positiveInteger(options.samples, 'samples');
    this.seed = options.seed ?? 0;
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.baseline = options.baseline ?? 'blurred';
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const { phi, segments } = await this.attribution(ctx);
    const [, H, W] = ctx.input.shape;
    const sign = this.negative ? -1 : 1;
    const map = Float32Array.from(segments.labels, (l) => Math.max(0, sign * phi[l]));
    return { cam: tf.tensor2d(map, [H, W]), weights: null, score: cachedScore(ctx) };
  }

  /** The segments and their signed Shapley values φ (float64), Σφ = S(x) − S(baseline). */
  async attribution(ctx: MethodContext): Promise<{ phi: Float64Array; segments: Segments; f0: number; f1: number }> {
    const [, H, W, C] = ctx.input.shape;
    const values = ctx.input.dataSync() as Float32Array;
    const segments = segment(this.segmentation, values, H, W, C, this.segments, this.compactness, ctx.inputRange);
    const M = segments.count;
    // Fewer than 2·M coalitions cannot pin down M values: the budget is raised to that.
    const { masks, weights } = coalitions(M, Math.max(2 * M, this.samples ?? 2 * M + 2048), mulberry32(this.seed));
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const delta = tf.sub(ctx.input, baseline);
    const y = new Float64Array(masks.length);
    let f0: number;
    let f1: number;
    try {
      [f0, f1] = await this.scores(ctx, baseline, delta, segments, [new Uint8Array(M), new Uint8Array(M).fill(1)]);
      for (let i = 0; i < masks.length; i += this.batchSize) {
        const some = masks.slice(i, i + this.batchSize);
        const s = await this.scores(ctx, baseline, delta, segments, some);
        s.forEach((v, j) => (y[i + j] = v - f0));
      }
    } finally {
      tf.dispose([baseline, delta]);
    }
    return { phi: constrainedShapley(masks, weights, y, f1 - f0), segments, f0, f1 };
  }

  /** S(b + mask(z) ⊙ (x − b)) for each coalition, in one batched model call. */
  private async scores(ctx: MethodContext, baseline: tf.Tensor4D, delta: tf.Tensor, segments: Segments, zs: Uint8Array[]) {
    const [, H, W] = ctx.input.shape;
    const flat = new Float32Array(zs.length * H * W);
    zs.forEach((z, b) => {
      for (let p = 0; p < H * W; p++) flat[b * H * W + p] = z[segments.labels[p]];
    });
    const batch = tf.tidy(() => tf.add(baseline, tf.mul(tf.tensor4d(flat, [zs.length, H, W, 1]), delta)) as tf.Tensor4D);
    return Float64Array.from(await ctx.adapter.scores(batch, ctx.objective).finally(() => batch.dispose()));
  }
}
