import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { HookedRun, RunHooks } from '../tfjs/hooks.js';
import { squashingActivation, type GraphStep, type LayersGraph } from './graph.js';
import { LINEAR, batchNormParams, linearOp } from './lrp.js';

/*
 * The LayersModel run with the hooks of guided backpropagation and FullGrad (../tfjs/hooks.ts): linear layers
 * (Conv2D, Conv2DTranspose, DepthwiseConv2D, Dense) as their linear part, `biased` on it, then their activation (a ReLU
 * through `relu`); ReLU layers and Activation('relu') through `relu`; BatchNormalization as the layer computes it, then
 * `biased` with its effective bias β − μγ/√(σ² + ε); every other layer as the executor calls it. A final softmax or
 * sigmoid is skipped (logits), as everywhere.
 */

/** Layers with weights that are none of the above: FullGrad cannot split their bias out. */
function hiddenBias(graph: LayersGraph): GraphStep | undefined {
  return graph.steps.find((s) => {
    const type = s.layer.getClassName();
    if (LINEAR.includes(type) || type === 'BatchNormalization') return false;
    return (s.layer as unknown as tf.layers.Layer).getWeights().length > 0;
  });
}

const isRelu = (step: GraphStep): boolean => {
  const type = step.layer.getClassName();
  const cfg = (step.layer as unknown as tf.layers.Layer).getConfig();
  if (type === 'ReLU') return cfg.maxValue == null;
  return type === 'Activation' && String(cfg.activation).toLowerCase() === 'relu';
};

/** The run; `forBiases` first refuses a model with a layer whose bias cannot be split out (typed). */
export function layersHookedRun(graph: LayersGraph, forBiases: boolean): HookedRun {
  if (forBiases) {
    const hidden = hiddenBias(graph);
    if (hidden)
      throw new SegGradCamError(
        `FullGrad cannot split the bias of layer '${hidden.layer.name}' (${hidden.layer.getClassName()}); it handles Conv2D, Conv2DTranspose, DepthwiseConv2D, Dense and BatchNormalization`,
        'model',
      );
    const bn = graph.steps.find((s) => s.layer.getClassName() === 'BatchNormalization' && ![-1, 3].includes(config(s).axis as number));
    if (bn) throw new SegGradCamError(`FullGrad: BatchNormalization '${bn.layer.name}' is not over the last axis`, 'model');
  }
  return (input: tf.Tensor4D, hooks: RunHooks): tf.Tensor => {
    const values = new Map<number, tf.Tensor>([[graph.inputId, input]]);
    graph.steps.forEach((step, i) => {
      const type = step.layer.getClassName();
      const logitsHere = step.outputIds.includes(graph.outputId) && squashingActivation(step.layer) !== 'none';
      const x = values.get(step.inputIds[0]) as tf.Tensor;
      let y: tf.Tensor;
      if (LINEAR.includes(type) && step.inputIds.length === 1 && config(step).dataFormat !== 'channelsFirst') {
        const op = linearOp(step, values);
        let z = op.apply(x, op.kernel, op.bias);
        if (op.bias && hooks.biased) z = hooks.biased(step.layer.name, z, op.bias);
        y = logitsHere ? z : activate(step, z, hooks);
      } else if (hooks.relu && !logitsHere && isRelu(step)) {
        y = hooks.relu(x);
      } else {
        const computed = graph.run(values, new Set([i]), true);
        for (const [id, t] of computed) values.set(id, t);
        y = computed.get(step.outputIds[0]) as tf.Tensor;
        if (type === 'BatchNormalization' && hooks.biased) y = hooks.biased(step.layer.name, y, batchNormParams(step).shift);
      }
      values.set(step.outputIds[0], y);
    });
    return values.get(graph.outputId) as tf.Tensor;
  };
}

function config(step: GraphStep): Record<string, unknown> {
  return (step.layer as unknown as tf.layers.Layer).getConfig() as Record<string, unknown>;
}

/** A linear layer's fused activation on z (a ReLU through the hook). */
function activate(step: GraphStep, z: tf.Tensor, hooks: RunHooks): tf.Tensor {
  const act = step.layer.activation;
  if (!act) return z;
  if (hooks.relu && act.getClassName().toLowerCase() === 'relu') return hooks.relu(z);
  return act.apply(z);
}
