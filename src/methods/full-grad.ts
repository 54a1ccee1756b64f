import * as tf from '@tensorflow/tfjs';
import type { BiasGradients } from '../engine/contract.js';
import { notSupported } from '../engine/errors.js';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';

/**
 * FullGrad (Srinivas & Fleuret 2019, *Full-gradient representation for neural network visualization*, Eq. 4):
 * ψ(x ⊙ ∂S/∂x) + Σ_layers Σ_channels ψ(b ⊙ ∂S/∂z), summed over channels, where z is every biased layer's output
 * (convolutions; BatchNorm's effective bias) and ψ(t) = (|t| − min|t|) / (max(|t| − min|t|) + 10⁻⁶) over the whole
 * tensor, the layer maps upsampled bilinearly (aligned corners, as the authors' code) to the model input. Terms of
 * layers without a spatial map (dense) are left out of the map, as in the paper; they are in the decomposition
 * (`ModelAdapter.biasGradients`, whose raw terms satisfy completeness). The engine computes the gradients; one without
 * them is a typed "not supported" error.
 */
export class FullGrad implements ModelMethod {
  readonly name = 'full-grad';
  readonly target = 'input';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    if (!ctx.adapter.biasGradients) throw notSupported('FullGrad', ctx.adapter.kind, 'its engine cannot give the gradients at every bias');
    const parts = ctx.adapter.biasGradients(ctx.input, ctx.objective);
    try {
      return { cam: fullGradMap(ctx.input, parts), weights: null, score: parts.score };
    } finally {
      tf.dispose([parts.inputGradient, ...parts.biasTerms.map((t) => t.term)]);
    }
  }
}

/** ψ: |t| shifted to a minimum of 0 and scaled to a maximum of about 1, over the whole tensor. */
function rescaled(t: tf.Tensor): tf.Tensor {
  const a = tf.abs(t);
  const shifted = tf.sub(a, tf.min(a));
  return tf.div(shifted, tf.add(tf.max(shifted), 1e-6));
}

/** The FullGrad map [H, W] of an input [1, H, W, C] and its decomposition. */
export function fullGradMap(input: tf.Tensor4D, parts: BiasGradients): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w] = input.shape;
    let map = tf.sum(rescaled(tf.mul(input, parts.inputGradient)), -1).reshape([h, w]);
    for (const { term } of parts.biasTerms) {
      if (term.rank !== 4) continue;
      const up = tf.image.resizeBilinear(rescaled(term) as tf.Tensor4D, [h, w], true, false);
      map = tf.add(map, tf.sum(up, -1).reshape([h, w]));
    }
    return map as tf.Tensor2D;
  });
}
