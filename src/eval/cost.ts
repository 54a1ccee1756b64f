/**
 * Cost of a method (docs/evaluation/protocol.md, item 6): the model passes it makes, counted
 * by a wrapper around the adapter that the Explainer is built on. The wrapper forwards every
 * member of the wrapped adapter (its capabilities included, so methods that ask for one, such as
 * LRP or CAM, see the same engine) and counts the calls below; the adapter itself is not touched.
 *
 * Counted per image: `forward` (a full forward pass), `scores` (a batched forward pass, per
 * image), `inputGradients` (a forward and a backward pass per image), and `ForwardPass.gradient`
 * (one backward pass; it re-runs only the layers downstream of the explained layer first).
 * Counted passes offer `gradient` only (no batched or multi-layer backward), so every backward
 * pass is one call, and `forward` is not primed.
 */
import type { ForwardPass, ModelAdapter } from '../engine/contract.js';

export interface PassCounts {
  forward: number;
  backward: number;
}

export interface Instrumented {
  /** The counting adapter: build the Explainer on it. */
  readonly adapter: ModelAdapter;
  readonly counts: PassCounts;
  /** Counts since the last reset, then zero them. */
  take(): PassCounts;
  /** Stops counting (the wrapper keeps forwarding). */
  restore(): void;
}

/** A counting adapter around `adapter` (which stays as it is). */
export function instrumentAdapter(adapter: ModelAdapter): Instrumented {
  const counts: PassCounts = { forward: 0, backward: 0 };
  let counting = true;
  const count = (forward: number, backward: number) => {
    if (!counting) return;
    counts.forward += forward;
    counts.backward += backward;
  };
  const wrapPass = (pass: ForwardPass): ForwardPass => ({
    get output() {
      return pass.output;
    },
    activation: (layer) => pass.activation(layer),
    cacheActivations: pass.cacheActivations?.bind(pass),
    gradient: (layer, objective) => {
      count(0, 1);
      return pass.gradient(layer, objective);
    },
    dispose: () => pass.dispose(),
  });
  const counted: Partial<ModelAdapter> = {
    forward: async (input) => {
      count(input.shape[0], 0);
      return wrapPass(await adapter.forward(input));
    },
    scores: (inputs, objective) => {
      count(inputs.shape[0], 0);
      return adapter.scores(inputs, objective);
    },
    inputGradients: (inputs, objective) => {
      count(inputs.shape[0], inputs.shape[0]);
      return adapter.inputGradients(inputs, objective);
    },
  };
  // Every other member (properties and capabilities, present or added later) is the adapter's own.
  const wrapper = new Proxy(adapter, {
    get(target, key) {
      if (Object.prototype.hasOwnProperty.call(counted, key)) return counted[key as keyof ModelAdapter];
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    adapter: wrapper,
    counts,
    take: () => {
      const c = { ...counts };
      counts.forward = 0;
      counts.backward = 0;
      return c;
    },
    restore: () => {
      counting = false;
    },
  };
}
