import * as tf from '@tensorflow/tfjs';
import { isModelMethod, type Method, type MethodContext, type MethodResult } from './method.js';
import { cachedScore } from './score.js';

/** Runs any method on a context: a CamMethod gets A and ∂S/∂A at the context's layer (zeros for gradient-free ones). */
export async function runMethod(method: Method, ctx: MethodContext): Promise<MethodResult> {
  if (isModelMethod(method)) return method.explain(ctx);
  if (!method.usesGradients) {
    await ctx.pass.cacheActivations?.([ctx.layer.name]);
    const activations = ctx.pass.activation(ctx.layer.name) as tf.Tensor4D;
    const zeros = tf.zerosLike(activations);
    try {
      return { ...method.compute(activations, zeros), score: cachedScore(ctx) };
    } finally {
      zeros.dispose();
    }
  }
  const { activations, gradients, score } = await ctx.pass.gradient(ctx.layer.name, ctx.objective);
  try {
    return { ...method.compute(activations, gradients), score };
  } finally {
    tf.dispose([activations, gradients]);
  }
}
