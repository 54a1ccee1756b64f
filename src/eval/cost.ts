/**
 * Cost of a method (docs/evaluation/protocol.md, item 6): the model passes it makes, counted by
 * instrumenting the adapter in place (so `instanceof` checks of methods such as LRP still hold).
 *
 * Counted per image: `forward` (a full forward pass), `scores` (a batched forward pass, per
 * image), `inputGradients` (a forward and a backward pass per image), and `ForwardPass.gradient`
 * (one backward pass; it re-runs only the layers downstream of the explained layer first).
 */
import type { ForwardPass, ModelAdapter } from '../engine/contract.js';

export interface PassCounts {
  forward: number;
  backward: number;
}

export interface Instrumented {
  readonly counts: PassCounts;
  /** Counts since the last reset, then zero them. */
  take(): PassCounts;
  /** Puts the adapter's own methods back. */
  restore(): void;
}

export function instrumentAdapter(adapter: ModelAdapter): Instrumented {
  const counts: PassCounts = { forward: 0, backward: 0 };
  const target = adapter as unknown as Record<string, unknown>;
  const own = {
    forward: Object.prototype.hasOwnProperty.call(target, 'forward') ? target.forward : undefined,
    scores: Object.prototype.hasOwnProperty.call(target, 'scores') ? target.scores : undefined,
    inputGradients: Object.prototype.hasOwnProperty.call(target, 'inputGradients') ? target.inputGradients : undefined,
  };
  const forward = adapter.forward.bind(adapter);
  const scores = adapter.scores.bind(adapter);
  const inputGradients = adapter.inputGradients.bind(adapter);
  const wrapPass = (pass: ForwardPass): ForwardPass => ({
    get output() {
      return pass.output;
    },
    activation: (layer) => pass.activation(layer),
    cacheActivations: pass.cacheActivations?.bind(pass),
    gradient: (layer, objective) => {
      counts.backward++;
      return pass.gradient(layer, objective);
    },
    dispose: () => pass.dispose(),
  });
  target.forward = async (input: Parameters<ModelAdapter['forward']>[0]) => {
    counts.forward += input.shape[0];
    return wrapPass(await forward(input));
  };
  target.scores = (inputs: Parameters<ModelAdapter['scores']>[0], objective: Parameters<ModelAdapter['scores']>[1]) => {
    counts.forward += inputs.shape[0];
    return scores(inputs, objective);
  };
  target.inputGradients = (
    inputs: Parameters<ModelAdapter['inputGradients']>[0],
    objective: Parameters<ModelAdapter['inputGradients']>[1],
  ) => {
    counts.forward += inputs.shape[0];
    counts.backward += inputs.shape[0];
    return inputGradients(inputs, objective);
  };
  return {
    counts,
    take: () => {
      const c = { ...counts };
      counts.forward = 0;
      counts.backward = 0;
      return c;
    },
    restore: () => {
      for (const [k, v] of Object.entries(own)) {
        if (v === undefined) delete target[k];
        else target[k] = v;
      }
    },
  };
}
