import * as tf from '@tensorflow/tfjs';
import type { OutputInfo } from '../engine/contract.js';
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
  /**
   * Keep M's pixels (Hoyer et al.'s context explanations): x̃ = b + (K + (1 − K) ⊙ U(m)) ⊙ (x − b),
   * K = M on the input grid, so the mask only chooses context (default false: M is masked too).
   */
  keepRegion?: boolean;
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
  readonly keepRegion: boolean;

  constructor(options: GridSaliencyOptions = {}) {
    this.iterations = positiveInteger(options.iterations ?? 100, 'iterations');
    const r = options.maskResolution ?? 16;
    const [rows, cols] = Array.isArray(r) ? r : [r, r];
    this.resolution = [positiveInteger(rows, 'maskResolution'), positiveInteger(cols, 'maskResolution')];
    this.lambda = nonNegative(options.lambda ?? 0.05, 'lambda');
    this.learningRate = positive(options.learningRate ?? 0.1, 'learningRate');
    this.baseline = options.baseline ?? 'black';
    this.keepRegion = options.keepRegion ?? false;
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
    // K: M on the input grid (nearest output cell); free = 1 − K scales the mask and its gradient.
    const keep = this.keepRegion ? regionOnInput(ctx.objective.weights, ctx.adapter.output, H, W) : null;
    const free = keep
      ? tf.tensor4d(
          Float32Array.from(keep, (k) => 1 - k),
          [1, H, W, 1],
        )
      : null;
    const kept = keep ? tf.tensor4d(keep, [1, H, W, 1]) : null;
    try {
      const ends = tf.concat([ctx.input, baseline]) as tf.Tensor4D;
      const [s0, sb] = await ctx.adapter.scores(ends, ctx.objective).finally(() => ends.dispose());
      const scale = Math.max(Math.abs(s0 - sb), 1e-6 * Math.max(1, Math.abs(s0)));
      const m = new Float64Array(n).fill(0.5);
      const adam = new Adam(n, this.learningRate);
      for (let it = 0; it < this.iterations; it++) {
        const mt = tf.tensor2d(Float32Array.from(m), [rh, rw]);
        const blended = tf.tidy(() => {
          const up = tf.matMul(tf.matMul(Rh, mt), Rw, false, true).reshape([1, H, W, 1]);
          const full = free && kept ? tf.add(kept, tf.mul(free, up)) : up;
          return tf.add(baseline, tf.mul(full, delta)) as tf.Tensor4D;
        });
        const { gradients, scores } = await ctx.adapter.inputGradients(blended, ctx.objective).finally(() => tf.dispose([mt, blended]));
        // ∂S/∂m = Rhᵀ (Σ_c ∂S/∂x̃ ⊙ (x − b)) Rw.
        // (with K kept: ∂S/∂m = Rhᵀ ((1 − K) ⊙ Σ_c ∂S/∂x̃ ⊙ (x − b)) Rw).
        const dS = tf.tidy(() => {
          const g = tf.sum(tf.mul(gradients, delta), -1).reshape([H, W]);
          const gf = free ? tf.mul(g, free.reshape([H, W])) : g;
          return tf.matMul(tf.matMul(Rh, gf, true, false), Rw);
        });
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
      tf.dispose([free, kept].filter((t): t is tf.Tensor4D => t !== null));
    }
  }
}

/** M (the objective's nonzero weights) on the input grid, nearest output cell; 1 on M, 0 elsewhere. */
function regionOnInput(weights: Float32Array, output: OutputInfo, H: number, W: number): Float32Array {
  const h = output.height;
  const w = output.width;
  const C = output.channels;
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const oy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / H));
    for (let x = 0; x < W; x++) {
      const ox = Math.min(w - 1, Math.floor(((x + 0.5) * w) / W));
      const o = (oy * w + ox) * C;
      for (let c = 0; c < C; c++) if (weights[o + c] !== 0) out[y * W + x] = 1;
    }
  }
  return out;
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
