import * as tf from '@tensorflow/tfjs';
import type { LayerInfo, ModelAdapter } from '../engine/contract.js';

/**
 * Which methods an open model cannot run, and why: the methods whose support depends on an engine capability
 * (CAM: the adapter reads a GAP + linear head, `headKernel`; LRP: `relevance`; Ablation-CAM: a forward pass that
 * re-runs the model after a layer, `ForwardPass.scoresWithActivations`). Every other method runs on every engine.
 * Returns method name → reason; a method not listed is supported. Runs one forward pass on a blank input (freed).
 */
export async function unsupportedMethods(adapter: ModelAdapter, layers: LayerInfo[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const cam = camRefusal(adapter, layers);
  if (cam) out.cam = cam;
  if (!adapter.relevance) out.lrp = `LRP needs relevance rules for the model's layers; this engine (${adapter.kind}) has none`;
  if (!adapter.guidedGradient) {
    out['guided-backprop'] = `guided backpropagation needs guided ReLU gradients; this engine (${adapter.kind}) has none`;
    out['guided-grad-cam'] = out['guided-backprop'];
  }
  if (!adapter.biasGradients) out['full-grad'] = `FullGrad needs the gradients at every bias; this engine (${adapter.kind}) has none`;
  const ablation = await ablationRefusal(adapter);
  if (ablation) out['ablation-cam'] = ablation;
  const shapley = await shapleyRefusal(adapter);
  if (shapley) out['shapley-cam'] = shapley;
  return out;
}

/** Why ShapleyCAM cannot run: the engine's forward pass has no Hessian-vector product (`hessianActivationProduct`). */
async function shapleyRefusal(adapter: ModelAdapter): Promise<string | null> {
  const { height, width, channels } = adapter.input;
  const x = tf.zeros([1, height, width, channels]) as tf.Tensor4D;
  try {
    const pass = await adapter.forward(x);
    const can = typeof pass.hessianActivationProduct === 'function';
    pass.dispose();
    return can ? null : `ShapleyCAM needs second derivatives of the score in the layer; this engine (${adapter.kind}) has none`;
  } catch (err) {
    return `ShapleyCAM: the model did not run on a blank input (${(err as Error).message})`;
  } finally {
    x.dispose();
  }
}

/** Why CAM cannot run: no head reader, or no layer feeds a global-average-pool + linear head that is the output. */
function camRefusal(adapter: ModelAdapter, layers: LayerInfo[]): string | null {
  const need = 'CAM needs a global-average-pool + linear head (a classifier)';
  if (!adapter.headKernel) return `${need}; this engine (${adapter.kind}) cannot read one`;
  // The head follows the last spatial layers: try from the end.
  for (const layer of [...layers].reverse()) {
    try {
      adapter.headKernel(layer).dispose();
      return null;
    } catch {
      // This layer does not feed the head; the next may.
    }
  }
  return `${need}; no layer of this model feeds one`;
}

/** Why Ablation-CAM cannot run: the engine's forward pass cannot re-run the model after a layer. */
async function ablationRefusal(adapter: ModelAdapter): Promise<string | null> {
  const { height, width, channels } = adapter.input;
  const x = tf.zeros([1, height, width, channels]) as tf.Tensor4D;
  try {
    const pass = await adapter.forward(x);
    const can = typeof pass.scoresWithActivations === 'function';
    pass.dispose();
    return can ? null : `Ablation-CAM re-runs the model after the layer; this engine (${adapter.kind}) cannot`;
  } catch (err) {
    return `Ablation-CAM: the model did not run on a blank input (${(err as Error).message})`;
  } finally {
    x.dispose();
  }
}
