import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter, Objective } from '../engine/contract.js';
import { baselineFor, type Baseline } from './baseline.js';
import { reluChannelSum, type MethodContext, type MethodResult, type ModelMethod, type NegativeOption } from './method.js';
import { positiveInteger } from './options.js';
import { cachedScore } from './score.js';

export interface IntegratedGradientsOptions extends NegativeOption {
  /** Intervals of the path integral (default 32; trapezoidal rule, so steps + 1 model gradients). */
  steps?: number;
  /** Default 'black'. */
  baseline?: Baseline;
  /** Path points per model call (default 8). */
  batchSize?: number;
}

/**
 * Integrated Gradients (Sundararajan et al. 2017) at the model input:
 * (x − b) ⊙ ∫₀¹ ∂S/∂x(b + t(x − b)) dt, the integral by the trapezoidal rule. Completeness:
 * the attributions sum to S(x) − S(b) up to the rule's error. The map: ReLU(Σ_c attribution)
 * (negative: ReLU(−Σ_c attribution)).
 */
export class IntegratedGradients implements ModelMethod {
  readonly name = 'integrated-gradients';
  readonly target = 'input';
  readonly steps: number;
  readonly baseline: Baseline;
  readonly batchSize: number;
  readonly negative: boolean;

  constructor(options: IntegratedGradientsOptions = {}) {
    this.negative = options.negative ?? false;
    this.steps = positiveInteger(options.steps ?? 32, 'steps');
    this.baseline = options.baseline ?? 'black';
    this.batchSize = positiveInteger(options.batchSize ?? 8, 'batchSize');
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const baseline = baselineFor(ctx.input, this.baseline, ctx.inputRange);
    try {
      const attributions = await integratedGradients(ctx.adapter, ctx.input, baseline, ctx.objective, this);
      const cam = reluChannelSum(attributions, this.negative);
      attributions.dispose();
      return { cam, weights: null, score: cachedScore(ctx) };
    } finally {
      baseline.dispose();
    }
  }
}

/** The attributions [1, H, W, C] (signed, per channel); the caller owns them. */
export async function integratedGradients(
  adapter: ModelAdapter,
  input: tf.Tensor4D,
  baseline: tf.Tensor4D,
  objective: Objective,
  options: { steps: number; batchSize: number },
): Promise<tf.Tensor4D> {
  const { steps, batchSize } = options;
  const delta = tf.sub(input, baseline) as tf.Tensor4D;
  let sum = tf.zerosLike(input) as tf.Tensor4D;
  try {
    for (let k0 = 0; k0 <= steps; k0 += batchSize) {
      const ks = Array.from({ length: Math.min(batchSize, steps + 1 - k0) }, (_, i) => k0 + i);
      // Trapezoidal weights: 1/steps inside, half of it at both ends.
      const weights = ks.map((k) => (k === 0 || k === steps ? 0.5 : 1) / steps);
      const path = tf.tidy(() => {
        const t = tf.tensor1d(ks.map((k) => k / steps)).reshape([ks.length, 1, 1, 1]);
        return tf.add(baseline, tf.mul(t, delta)) as tf.Tensor4D;
      });
      const { gradients } = await adapter.inputGradients(path, objective).finally(() => path.dispose());
      const next = tf.tidy(() => {
        const wt = tf.tensor1d(weights).reshape([ks.length, 1, 1, 1]);
        return tf.add(sum, tf.sum(tf.mul(gradients, wt), 0, true)) as tf.Tensor4D;
      });
      tf.dispose([gradients, sum]);
      sum = next;
    }
    return tf.mul(delta, sum) as tf.Tensor4D;
  } finally {
    tf.dispose([delta, sum]);
  }
}
