import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter, Objective } from '../engine/contract.js';
import { notSupported } from '../engine/errors.js';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';
import { saliencyMap } from './saliency.js';
import { cachedScore } from './score.js';

/**
 * Guided backpropagation (Springenberg et al. 2015, *Striving for simplicity: the all convolutional net*): ∂S/∂x with
 * every ReLU's backward passing only positive gradients at positive inputs (dy ⊙ [x > 0] ⊙ [dy > 0]); the map is
 * max_c |·| over the input channels, as for saliency. The engine runs it (`ModelAdapter.guidedGradient`); an engine
 * without it is a typed "not supported" error.
 */
export class GuidedBackprop implements ModelMethod {
  readonly name = 'guided-backprop';
  readonly target = 'input';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const g = guidedGradient(ctx.adapter, ctx.input, ctx.objective, this.name);
    const cam = saliencyMap(g);
    g.dispose();
    return { cam, weights: null, score: cachedScore(ctx) };
  }
}

/** The guided gradient [1, H, W, C] from the engine, or the typed refusal; the caller owns it. */
export function guidedGradient(adapter: ModelAdapter, input: tf.Tensor4D, objective: Objective, method: string): tf.Tensor4D {
  if (!adapter.guidedGradient) throw notSupported(method, adapter.kind, 'its engine cannot make its ReLUs guided');
  return adapter.guidedGradient(input, objective);
}
