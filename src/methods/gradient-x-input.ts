import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER } from '../engine/contract.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod, type NegativeOption } from './method.js';

/** Gradient × input (Shrikumar et al. 2016): ReLU(Σ_c x_c ∂S/∂x_c), x in the model's input units (negative: ReLU(−Σ …)). */
export class GradientTimesInput implements ModelMethod {
  readonly name = 'gradient-x-input';
  readonly target = 'input';
  readonly negative: boolean;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const { activations, gradients, score } = await ctx.pass.gradient(INPUT_LAYER, ctx.objective);
    const cam = weightedCam(activations, gradients, this.negative);
    tf.dispose([activations, gradients]);
    return { cam, weights: null, score };
  }
}
