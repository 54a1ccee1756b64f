import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { notSupported } from '../engine/errors.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod } from './method.js';
import { cachedScore } from './score.js';

/**
 * CAM (Zhou et al. 2016) for a classifier whose explained layer feeds only a global average
 * pooling and then a linear layer that is the model output: CAM = ReLU(Σ_k w_k A^k) with
 * w_k = Σ_c W_kc · (objective weight of class c), read from the linear kernel — no gradient.
 * There y_c = Σ_k W_kc mean(A^k) + b_c, so Grad-CAM's α_k = W_kc/N and CAM = N · Grad-CAM
 * (same heatmap). The engine reads the head (its `headKernel` capability): LayersModels
 * GlobalAveragePooling2D → Dense; GraphModels a Mean over height and width (or an AvgPool over the
 * whole map) → reshapes → MatMul (+ constant bias). Other engines: "not supported by this model".
 */
export class ClassActivationMap implements ModelMethod {
  readonly name = 'cam';
  readonly target = 'layer';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    if (ctx.objective.on !== 'logits') throw new SegGradCamError('CAM explains logits: use score logits', 'usage');
    if (!ctx.adapter.headKernel) throw notSupported('CAM', ctx.adapter.kind, 'the head is read from TF.js layers or graph nodes only');
    const kernel = ctx.adapter.headKernel(ctx.layer);
    await ctx.pass.cacheActivations?.([ctx.layer.name]);
    const A = ctx.pass.activation(ctx.layer.name) as tf.Tensor4D;
    const weights = tf.tidy(
      () => tf.matMul(kernel, tf.tensor2d(ctx.objective.weights, [ctx.objective.weights.length, 1])).reshape([-1]) as tf.Tensor1D,
    );
    kernel.dispose();
    const cam = weightedCam(A, weights);
    return { cam, weights, score: cachedScore(ctx) };
  }
}
