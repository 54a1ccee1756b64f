import * as tf from '@tensorflow/tfjs';
import type { ForwardPass, LayerGradient, ModelAdapter } from '../engine/contract.js';
import { SegGradCamError } from '../errors.js';

/**
 * NaN and infinities from the model (NaN weights, an input range it overflows on) become a typed
 * error naming where they appeared, instead of a NaN score and an all-zero map.
 */
export function nonFinite(kind: 'NaN' | 'Inf', where: string): SegGradCamError {
  return new SegGradCamError(`the model produced ${kind} at ${where} (check its weights and the input range)`, 'numeric');
}

/** 'NaN', 'Inf' or null (every value finite), for numbers already in JS. */
export function nonFiniteKind(values: ArrayLike<number>): 'NaN' | 'Inf' | null {
  let inf = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity || v === -Infinity) inf = true;
  }
  return inf ? 'Inf' : null;
}

/** Throws when a tensor holds NaN or ±Inf (two reductions on the backend, two numbers read). */
export function checkTensor(t: tf.Tensor, where: string): void {
  const flags = tf.tidy(() => {
    const x = t.reshape([-1]);
    return tf.stack([tf.any(tf.isNaN(x)), tf.any(tf.isInf(x))]).cast('int32');
  });
  const [nan, inf] = flags.dataSync();
  flags.dispose();
  if (nan) throw nonFinite('NaN', where);
  if (inf) throw nonFinite('Inf', where);
}

/** Throws when S is NaN or ±Inf. */
export function checkScore(values: ArrayLike<number>): void {
  const kind = nonFiniteKind(values);
  if (kind) throw nonFinite(kind, 'S (the score of M)');
}

const gradientAt = (layer: string) => `the gradient at layer ${layer}`;

/** Checks S and ∂S/∂A of gradients; frees them all when one fails. */
function checkGradients(grads: LayerGradient[], layers: string[]): LayerGradient[] {
  try {
    checkScore(grads.map((g) => g.score));
    grads.forEach((g, k) => checkTensor(g.gradients, gradientAt(layers[k])));
    return grads;
  } catch (err) {
    for (const g of grads) tf.dispose([g.activations, g.gradients]);
    throw err;
  }
}

/** Functions of `target` bound to it, except those `override` replaces. */
function withChecks<T extends object>(target: T, override: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, key, receiver) {
      if (key in override && Reflect.get(t, key) !== undefined) return override[key as keyof T];
      const v: unknown = Reflect.get(t, key, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/** The pass, its gradients checked (S and ∂S/∂A); everything else is the pass's own. */
export function checkedPass(pass: ForwardPass): ForwardPass {
  return withChecks(pass, {
    gradient: async (layer: string, objective: Parameters<ForwardPass['gradient']>[1]) =>
      checkGradients([await pass.gradient(layer, objective)], [layer])[0],
    gradientBatch: async (layer: string, objectives: Parameters<ForwardPass['gradient']>[1][]) => {
      const grads = await (pass.gradientBatch as NonNullable<ForwardPass['gradientBatch']>)(layer, objectives);
      return checkGradients(
        grads,
        grads.map(() => layer),
      );
    },
    gradientLayers: async (layers: string[], objective: Parameters<ForwardPass['gradient']>[1]) =>
      checkGradients(await (pass.gradientLayers as NonNullable<ForwardPass['gradientLayers']>)(layers, objective), layers),
  });
}

/** The adapter, the scores and input gradients of image batches checked (the methods that run the model many times). */
export function checkedAdapter(adapter: ModelAdapter): ModelAdapter {
  return withChecks(adapter, {
    scores: async (inputs: tf.Tensor4D, objective: Parameters<ModelAdapter['scores']>[1]) => {
      const s = await adapter.scores(inputs, objective);
      checkScore(s);
      return s;
    },
    inputGradients: async (inputs: tf.Tensor4D, objective: Parameters<ModelAdapter['scores']>[1]) => {
      const g = await adapter.inputGradients(inputs, objective);
      try {
        checkScore(g.scores);
        checkTensor(g.gradients, gradientAt('input'));
      } catch (err) {
        g.gradients.dispose();
        throw err;
      }
      return g;
    },
  });
}
