import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER } from '../engine/contract.js';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';

/** Gradient saliency (Simonyan et al. 2014): max over colour channels of |∂S/∂x|, at the model input. */
export class GradientSaliency implements ModelMethod {
  readonly name = 'saliency';
  readonly target = 'input';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const { activations, gradients, score } = await ctx.pass.gradient(INPUT_LAYER, ctx.objective);
    const cam = saliencyMap(gradients);
    tf.dispose([activations, gradients]);
    return { cam, weights: null, score };
  }
}

/** max_c |g| of a [1, H, W, C] (or [B, …], summed over B) gradient, as [H, W]. */
export function saliencyMap(gradients: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w] = gradients.shape;
    return tf.sum(tf.max(tf.abs(gradients), -1), 0).reshape([h, w]) as tf.Tensor2D;
  });
}
