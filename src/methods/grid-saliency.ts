import * as tf from '@tensorflow/tfjs';
import { baselineFor, type Baseline } from './baseline.js';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';
import { nonNegative, positive, positiveInteger } from './options.js';

export interface GridSaliencyOptions {
  /** Optimisation steps (default 100; one forward and backward pass each). */
  iterations?: number;
  /** Mask grid: rows = cols = n, or [rows, cols] (default 16; at most the input size). */
  maskResolution?: number | [number, number];
  /** Weight of the mask's mean, λ (default 0.05). */
  lambda?: number;
  /** Adam step size (default 0.1). */
  learningRate?: number;
  /** What the removed context becomes (default 'black'). */
  baseline?: Baseline;
}

/**
 * Grid Saliency (Hoyer et al. 2019): the smallest coarse mask m ∈ [0,1]^(r×r) that keeps M's
 * score when the rest of the image is replaced by a baseline b — the context the network needs:
 *   x̃ = b + U(m) ⊙ (x − b),   L(m) = λ·mean(m) + max(S(x) − S(x̃), 0) / |S(x) − S(b)|,
 * U = bilinear upsampling (half-pixel centres, as the heatmap's). The score term is divided by
 * S's range between baseline and image so λ means the same for every region size and class.
 * m starts at 0.5; Adam steps, then clipping to [0, 1]. The map is m.
 */
export class GridSaliency implements ModelMethod {
  readonly name = 'grid-saliency';
  readonly target = 'input';
  readonly iterations: number;
  readonly resolution: [number, number];
  readonly lambda: number;
  readonly learningRate: number;
  readonly baseline: Baseline;

  constructor(options: GridSaliencyOptions = {}) {
    this.iterations = positiveInteger(options.iterations ?? 100, 'iterations');
    const r = options.maskResolution ?? 16;
    const [rows, cols] = Array.isArray(r) ? r : [r, r];
    this.resolution = [positiveInteger(rows, 'maskResolution'), positiveInteger(cols, 'maskResolution')];
    this.lambda = nonNegative(options.lambda ?? 0.05, 'lambda');
    this.learningRate = positive(options.learningRate ?? 0.1, 'learningRate');
    this.baseline = options.baseline ?? 'black';
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const [, H, W] = ctx.input.shape;
    const rh = Math.min(H, this.resolution[0]);
    const rw = Math.min(W, this.resolution[1]);
    const n = rh * rw;
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    const delta = tf.sub(ctx.input, baseline) as tf.Tensor4D;
    const Rh = tf.tensor2d(upsamplingMatrix(H, rh), [H, rh]);
    const Rw = tf.tensor2d(upsamplingMatrix(W, rw), [W, rw]);
    try {
      const ends = tf.concat([ctx.input, baseline]) as tf.Tensor4D;
      const [s0, sb] = await ctx.adapter.scores(ends, ctx.objective).finally(() => ends.dispose());
      const scale = Math.max(Math.abs(s0 - sb), 1e-6 * Math.max(1, Math.abs(s0)));
      const m = new Float64Array(n).fill(0.5);
      const adam = new Adam(n, this.learningRate);
      for (let it = 0; it < this.iterations; it++) {
        const mt = tf.tensor2d(Float32Array.from(m), [rh, rw]);
        const blended = tf.tidy(
          () => tf.add(baseline, tf.mul(tf.matMul(tf.matMul(Rh, mt), Rw, false, true).reshape([1, H, W, 1]), delta)) as tf.Tensor4D,
        );
        const { gradients, scores } = await ctx.adapter.inputGradients(blended, ctx.objective).finally(() => tf.dispose([mt, blended]));
        // ∂S/∂m = Rhᵀ (Σ_c ∂S/∂x̃ ⊙ (x − b)) Rw.
        const dS = tf.tidy(() => tf.matMul(tf.matMul(Rh, tf.sum(tf.mul(gradients, delta), -1).reshape([H, W]), true, false), Rw));
        const dSdm = dS.dataSync();
        tf.dispose([gradients, dS]);
        const dropping = s0 - scores[0] > 0;
        const grad = new Float64Array(n);
        for (let i = 0; i < n; i++) grad[i] = this.lambda / n - (dropping ? dSdm[i] / scale : 0);
        adam.step(m, grad);
        for (let i = 0; i < n; i++) m[i] = Math.min(1, Math.max(0, m[i]));
      }
      return { cam: tf.tensor2d(Float32Array.from(m), [rh, rw]), weights: null, score: s0 };
    } finally {
      tf.dispose([baseline, delta, Rh, Rw]);
    }
  }
}

/** Adam (Kingma & Ba) on a plain vector, in place. */
class Adam {
  private readonly m1: Float64Array;
  private readonly m2: Float64Array;
  private t = 0;
  constructor(
    n: number,
    private readonly lr: number,
  ) {
    this.m1 = new Float64Array(n);
    this.m2 = new Float64Array(n);
  }
  step(x: Float64Array, g: Float64Array): void {
    const b1 = 0.9;
    const b2 = 0.999;
    this.t++;
    for (let i = 0; i < x.length; i++) {
      this.m1[i] = b1 * this.m1[i] + (1 - b1) * g[i];
      this.m2[i] = b2 * this.m2[i] + (1 - b2) * g[i] * g[i];
      const mh = this.m1[i] / (1 - b1 ** this.t);
      const vh = this.m2[i] / (1 - b2 ** this.t);
      x[i] -= (this.lr * mh) / (Math.sqrt(vh) + 1e-8);
    }
  }
}

/**
 * The [out, in] matrix of 1-D bilinear upsampling with half-pixel centres (TF's
 * resizeBilinear(halfPixelCenters=true)): out = R · in. The identity when out = in.
 */
export function upsamplingMatrix(out: number, inSize: number): Float32Array {
  const R = new Float32Array(out * inSize);
  for (let i = 0; i < out; i++) {
    const src = Math.min(inSize - 1, Math.max(0, ((i + 0.5) * inSize) / out - 0.5));
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const f = src - i0;
    R[i * inSize + i0] += 1 - f;
    R[i * inSize + i1] += f;
  }
  return R;
}
