import * as tf from '@tensorflow/tfjs';
import type { Objective, OutputInfo } from '../engine/contract.js';
import { SegGradCamError } from '../errors.js';
import { contrastObjective, objectiveClass } from '../region/contrast.js';
import type { MethodContext, MethodResult, ModelMethod, NegativeOption } from './method.js';
import { positiveInteger } from './options.js';
import { SegGradCam } from './seg-grad-cam.js';

export interface FinerCamOptions extends NegativeOption {
  /** How many of the most similar classes to contrast against (default 3, as pytorch-grad-cam's [1, 2, 3]). */
  comparisons?: number;
  /** Strength α of the comparison (default 1). */
  finerAlpha?: number;
}

/**
 * Finer-CAM (Zhang et al. 2025) with Grad-CAM as the base method, as pytorch-grad-cam's FinerCAM and
 * FinerWeightedTarget, per pixel of M: S = Σ_{p∈M} Σ_{j∈J} q_pj (y^c_p − α y^j_p) / Σ_{j∈J} q_pj, where J are the
 * `comparisons` classes whose mean logit over M is closest to class c's and q_pj the softmax probability of class j
 * at p. The q are held constant (pytorch-grad-cam differentiates through them); with one comparison class and
 * α = 1 this is the contrast S = Σ_M (y^c − y^j). A single sigmoid channel contrasts with the other class. The map is
 * Seg-Grad-CAM's on that objective; the score reported is the Finer objective's.
 */
export class FinerCam implements ModelMethod {
  readonly name = 'finer-cam';
  readonly target = 'layer';
  readonly comparisons: number;
  readonly alpha: number;
  private readonly base: SegGradCam;

  constructor(options: FinerCamOptions = {}) {
    this.comparisons = positiveInteger(options.comparisons ?? 3, 'comparisons');
    const alpha = options.finerAlpha ?? 1;
    if (!Number.isFinite(alpha)) throw new SegGradCamError(`finerAlpha must be a finite number, got ${alpha}`, 'usage');
    this.alpha = alpha;
    this.base = new SegGradCam(options);
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const objective = finerObjective(ctx.objective, ctx.adapter.output, ctx.pass.output, this.comparisons, this.alpha);
    const { activations, gradients, score } = await ctx.pass.gradient(ctx.layer.name, objective.objective);
    try {
      return { ...this.base.compute(activations, gradients), score };
    } finally {
      tf.dispose([activations, gradients]);
    }
  }
}

/** The Finer-CAM objective for an objective of class c at the given logits, and the comparison classes J. */
export function finerObjective(
  objective: Objective,
  output: OutputInfo,
  logits: tf.Tensor,
  comparisons: number,
  alpha: number,
): { objective: Objective; classes: number[] } {
  const c = objectiveClass(objective, output);
  const C = output.channels;
  if (C === 1) return { objective: contrastObjective(objective, output, 1 - c, alpha), classes: [1 - c] };
  const y = logits.dataSync();
  const w = objective.weights;
  const P = w.length / C;
  // Mean logits over M, weighted as M is.
  const mean = new Float64Array(C);
  for (let p = 0; p < P; p++) {
    const m = w[p * C + c];
    if (m === 0) continue;
    for (let j = 0; j < C; j++) mean[j] += m * y[p * C + j];
  }
  const classes = Array.from({ length: C }, (_, j) => j)
    .filter((j) => j !== c)
    .sort((a, b) => Math.abs(mean[a] - mean[c]) - Math.abs(mean[b] - mean[c]) || a - b)
    .slice(0, comparisons);
  const weights = new Float32Array(w.length);
  for (let p = 0; p < P; p++) {
    const m = w[p * C + c];
    if (m === 0) continue;
    let top = -Infinity;
    for (let j = 0; j < C; j++) top = Math.max(top, y[p * C + j]);
    const q = classes.map((j) => Math.exp(y[p * C + j] - top));
    const total = q.reduce((s, v) => s + v, 0);
    weights[p * C + c] = m;
    classes.forEach((j, i) => (weights[p * C + j] -= (alpha * m * q[i]) / total));
  }
  return { objective: { ...objective, weights }, classes };
}
