import * as tf from '@tensorflow/tfjs';
import { notSupported } from '../engine/errors.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod, type NegativeOption } from './method.js';

/**
 * ShapleyCAM (Cai et al. 2024, "CAMs as Shapley value-based explainers", arXiv 2501.06261): the channel weights come
 * from a second-order Taylor expansion of S in the layer's output A, α_k = mean_{u,v} (∂S/∂A − ½ H·A)^k_{uv}, where
 * H·A is the Hessian of S w.r.t. A applied to A itself; the map is ReLU(Σ_k α_k A^k) (negative: ReLU(−Σ …)). H·A is
 * exact (nested differentiation, `ForwardPass.hessianActivationProduct`); an engine without it (ONNX) is a typed
 * refusal. Where S is piecewise linear in A (ReLU nets scored on logits) H·A = 0 almost everywhere and ShapleyCAM is
 * Seg-Grad-CAM; a softmax objective (`on: 'probability'`) makes the second-order term count.
 */
export class ShapleyCam implements ModelMethod {
  readonly name = 'shapley-cam';
  readonly target = 'layer';
  readonly negative: boolean;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const { pass } = ctx;
    if (!pass.hessianActivationProduct)
      throw notSupported(
        this.name,
        ctx.adapter.kind,
        'it needs second derivatives of S in the layer output, which this engine does not offer',
      );
    const { activations, gradients, hessianProduct, score } = await pass.hessianActivationProduct(ctx.layer.name, ctx.objective);
    try {
      const weights = shapleyWeights(gradients, hessianProduct);
      return { cam: weightedCam(activations, weights, this.negative), weights, score };
    } finally {
      tf.dispose([activations, gradients, hessianProduct]);
    }
  }
}

/** α_k = mean over positions of (∂S/∂A − ½ H·A) in channel k, [K]. */
export function shapleyWeights(gradients: tf.Tensor4D, hessianProduct: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.mean(tf.sub(gradients, tf.mul(hessianProduct, 0.5)), [0, 1, 2]) as tf.Tensor1D);
}
