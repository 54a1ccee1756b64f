import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { LayerInfo, ModelAdapter } from '../engine/contract.js';
import { GraphModelAdapter } from '../engine/tfjs-graph/adapter.js';
import { LayersModelAdapter } from '../engine/tfjs-layers/adapter.js';
import { graphCamKernel } from './cam-graph.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod } from './method.js';
import { cachedScore } from './score.js';

/**
 * CAM (Zhou et al. 2016) for a classifier whose explained layer feeds only a global average
 * pooling and then a linear layer that is the model output: CAM = ReLU(Σ_k w_k A^k) with
 * w_k = Σ_c W_kc · (objective weight of class c), read from the linear kernel — no gradient.
 * There y_c = Σ_k W_kc mean(A^k) + b_c, so Grad-CAM's α_k = W_kc/N and CAM = N · Grad-CAM
 * (same heatmap). LayersModels: GlobalAveragePooling2D → Dense. GraphModels: Mean over height
 * and width (or an AvgPool over the whole map) → reshapes → MatMul (+ constant bias).
 */
export class ClassActivationMap implements ModelMethod {
  readonly name = 'cam';
  readonly target = 'layer';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    if (ctx.objective.on !== 'logits') throw new SegGradCamError('CAM explains logits: use score logits', 'usage');
    const kernel = headKernel(ctx.adapter, ctx.layer);
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

/** The [K, C] kernel of the linear head behind a global average pooling of `layer`; the caller owns it. */
function headKernel(adapter: ModelAdapter, layer: LayerInfo): tf.Tensor2D {
  if (adapter instanceof GraphModelAdapter) {
    const need = `CAM needs a global-average-pooling + linear head: node '${layer.name}' must feed only a Mean over height and width (or a whole-map AvgPool), then a MatMul that is the model output`;
    return graphCamKernel(adapter.graph, layer.name, layer.outputShape, need);
  }
  const need = `CAM needs a LayersModel whose layer '${layer.name}' feeds only GlobalAveragePooling2D → Dense (the model output)`;
  if (!(adapter instanceof LayersModelAdapter)) throw new SegGradCamError(`${need}; this is a ${adapter.kind}`, 'model');
  const { graph } = adapter;
  const consumers = (id: number | undefined) => graph.steps.filter((s) => id != null && s.inputIds.includes(id));
  const gap = consumers(graph.layerOutput.get(layer.name));
  if (gap.length !== 1 || gap[0].layer.getClassName() !== 'GlobalAveragePooling2D') throw new SegGradCamError(need, 'model');
  const dense = consumers(gap[0].outputIds[0]);
  if (dense.length !== 1 || dense[0].layer.getClassName() !== 'Dense' || !dense[0].outputIds.includes(graph.outputId)) {
    throw new SegGradCamError(need, 'model');
  }
  return ((dense[0].layer as unknown as tf.layers.Layer).getWeights()[0] as tf.Tensor2D).clone();
}
