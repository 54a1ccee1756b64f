import type * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { LayerInfo } from '../contract.js';
import type { LayersGraph } from './graph.js';

/**
 * CAM's head kernel on a LayersModel (the adapter's `headKernel` capability): `layer` must feed
 * only GlobalAveragePooling2D, and that only a Dense layer that is the model output. Returns the
 * Dense kernel [K, C]; the caller owns it.
 */
export function layersHeadKernel(graph: LayersGraph, layer: LayerInfo): tf.Tensor2D {
  const need = `CAM needs a LayersModel whose layer '${layer.name}' feeds only GlobalAveragePooling2D → Dense (the model output)`;
  const consumers = (id: number | undefined) => graph.steps.filter((s) => id != null && s.inputIds.includes(id));
  const gap = consumers(graph.layerOutput.get(layer.name));
  if (gap.length !== 1 || gap[0].layer.getClassName() !== 'GlobalAveragePooling2D') throw new SegGradCamError(need, 'model');
  const dense = consumers(gap[0].outputIds[0]);
  if (dense.length !== 1 || dense[0].layer.getClassName() !== 'Dense' || !dense[0].outputIds.includes(graph.outputId)) {
    throw new SegGradCamError(need, 'model');
  }
  return ((dense[0].layer as unknown as tf.layers.Layer).getWeights()[0] as tf.Tensor2D).clone();
}
