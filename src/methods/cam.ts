import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { LayersModelAdapter } from '../model/layers-adapter.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod } from './method.js';
import { cachedScore } from './score.js';

/**
 * CAM (Zhou et al. 2016) for a classifier whose explained layer feeds only a
 * GlobalAveragePooling2D and then a Dense layer that is the model output:
 * CAM = ReLU(Σ_k w_k A^k) with w_k = Σ_c W_kc · (objective weight of class c), read from the
 * Dense kernel — no gradient. There y_c = Σ_k W_kc mean(A^k) + b_c, so Grad-CAM's α_k = W_kc/N
 * and CAM = N · Grad-CAM (same heatmap).
 */
export class ClassActivationMap implements ModelMethod {
  readonly name = 'cam';
  readonly target = 'layer';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const adapter = ctx.adapter;
    const layer = ctx.layer.name;
    const need = `CAM needs a LayersModel whose layer '${layer}' feeds only GlobalAveragePooling2D → Dense (the model output)`;
    if (!(adapter instanceof LayersModelAdapter)) throw new SegGradCamError(`${need}; this is a ${adapter.kind}`, 'model');
    if (ctx.objective.on !== 'logits') throw new SegGradCamError('CAM explains logits: use score logits', 'usage');
    const { graph } = adapter;
    const consumers = (id: number | undefined) => graph.steps.filter((s) => id != null && s.inputIds.includes(id));
    const gap = consumers(graph.layerOutput.get(layer));
    if (gap.length !== 1 || gap[0].layer.getClassName() !== 'GlobalAveragePooling2D') throw new SegGradCamError(need, 'model');
    const dense = consumers(gap[0].outputIds[0]);
    if (dense.length !== 1 || dense[0].layer.getClassName() !== 'Dense' || !dense[0].outputIds.includes(graph.outputId)) {
      throw new SegGradCamError(need, 'model');
    }
    const kernel = (dense[0].layer as unknown as tf.layers.Layer).getWeights()[0] as tf.Tensor2D;
    const A = ctx.pass.activation(layer) as tf.Tensor4D;
    const weights = tf.tidy(() => tf.matMul(kernel, tf.tensor2d(ctx.objective.weights, [ctx.objective.weights.length, 1])).reshape([-1]) as tf.Tensor1D);
    const cam = weightedCam(A, weights);
    return { cam, weights, score: cachedScore(ctx) };
  }
}
