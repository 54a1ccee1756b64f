import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';

/**
 * LRP propagation rules (Montavon et al. 2018, "Methods for interpreting and understanding deep
 * neural networks", and "Layer-wise relevance propagation: an overview", 2019) for one layer.
 * All use the gradient trick: for z = f(a) linear in a, Σ_j a_j w_jk s_k = a ⊙ ∂/∂a Σ_k f(a)_k s_k,
 * with s held constant — one backward pass of the layer instead of an explicit weight matrix.
 */

/** A layer's linear part z = apply(a, kernel, bias), with its kernel and bias. */
export interface LinearOp {
  kernel: tf.Tensor;
  bias: tf.Tensor | null;
  apply(a: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor;
}

/** z + ε·sign(z), sign(0) = +1: the ε-rule's stabilised denominator. */
function stabilised(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.add(z, tf.where(tf.greaterEqual(z, 0), tf.fill(z.shape, epsilon), tf.fill(z.shape, -epsilon)));
}

/** R / z with 0 where z = 0 (no contribution, so nothing to divide). */
function safeDivide(r: tf.Tensor, z: tf.Tensor): tf.Tensor {
  const zero = tf.equal(z, 0);
  return tf.where(zero, tf.zerosLike(r), tf.div(r, tf.where(zero, tf.onesLike(z), z)));
}

/** a ⊙ ∂/∂a Σ f(a) ⊙ s. */
function contributions(f: (x: tf.Tensor) => tf.Tensor, a: tf.Tensor, s: tf.Tensor): tf.Tensor {
  return tf.mul(a, tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x), s)))(a));
}

/** ε-rule: R_j = Σ_k a_j w_jk / (z_k + ε sign z_k) · R_k, z_k = Σ_j a_j w_jk + b_k. */
export function epsilonRule(op: LinearOp, a: tf.Tensor, r: tf.Tensor, epsilon: number): tf.Tensor {
  const z = op.apply(a, op.kernel, op.bias);
  const s = tf.div(r, stabilised(z, epsilon));
  return contributions((x) => op.apply(x, op.kernel, null), a, s);
}

/**
 * αβ-rule: R_j = Σ_k (α (a_j w_jk)⁺ / Σ_j (a_j w_jk)⁺ − β (a_j w_jk)⁻ / Σ_j (a_j w_jk)⁻) R_k,
 * biases left out (as in Montavon et al.). Contributions are split by the sign of a_j w_jk,
 * so inputs of either sign (the image) are handled: (a w)⁺ = a⁺w⁺ + a⁻w⁻.
 */
export function alphaBetaRule(op: LinearOp, a: tf.Tensor, r: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  const wp = tf.relu(op.kernel);
  const wn = tf.minimum(op.kernel, 0);
  const pos = (x: tf.Tensor) => tf.add(op.apply(tf.relu(x), wp, null), op.apply(tf.minimum(x, 0), wn, null));
  const neg = (x: tf.Tensor) => tf.add(op.apply(tf.relu(x), wn, null), op.apply(tf.minimum(x, 0), wp, null));
  const rp = contributions(pos, a, safeDivide(r, pos(a)));
  const rn = contributions(neg, a, safeDivide(r, neg(a)));
  return tf.sub(tf.mul(rp, alpha), tf.mul(rn, beta));
}

/**
 * z-rule through a parameter-free linear map with non-negative coefficients (pooling, upsampling),
 * or the ε-rule through any affine map of a (its constants then take their share). With ε = 0,
 * outputs with z = 0 pass nothing (they had no contribution) rather than 0/0.
 */
export function proportionalRule(f: (x: tf.Tensor) => tf.Tensor, a: tf.Tensor, r: tf.Tensor, epsilon: number): tf.Tensor {
  const z = f(a);
  return contributions(f, a, epsilon > 0 ? tf.div(r, stabilised(z, epsilon)) : safeDivide(r, z));
}

/** Relevance routed back unchanged through a selection or rearrangement (max-pooling: winner takes all; reshape, padding). */
export function routeBack(f: (x: tf.Tensor) => tf.Tensor, a: tf.Tensor, r: tf.Tensor): tf.Tensor {
  return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x), r)))(a);
}

/** z = Σ_i a_i (Add): ε-rule, or αβ over the inputs' signs. */
export function sumRule(
  inputs: tf.Tensor[],
  r: tf.Tensor,
  rule: { kind: 'epsilon'; epsilon: number } | { kind: 'alpha-beta'; alpha: number; beta: number },
): tf.Tensor[] {
  if (rule.kind === 'epsilon') {
    const s = tf.div(r, stabilised(tf.addN(inputs), rule.epsilon));
    return inputs.map((a) => tf.mul(a, s));
  }
  const sp = safeDivide(r, tf.addN(inputs.map((a) => tf.relu(a))));
  const sn = safeDivide(r, tf.addN(inputs.map((a) => tf.minimum(a, 0))));
  return inputs.map((a) => tf.sub(tf.mul(tf.mul(tf.relu(a), sp), rule.alpha), tf.mul(tf.mul(tf.minimum(a, 0), sn), rule.beta)));
}

/**
 * z⁺-rule for a first layer (Montavon et al. 2017, "deep Taylor decomposition"; Zennit's ZPlus): R_j = Σ_k (a_j w_jk)⁺ /
 * Σ_j (a_j w_jk)⁺ · R_k, the bias left out — the αβ-rule with α = 1, β = 0 (for inputs of either sign (a w)⁺ = a⁺w⁺ + a⁻w⁻).
 */
export function zPlusRule(op: LinearOp, a: tf.Tensor, r: tf.Tensor): tf.Tensor {
  return alphaBetaRule(op, a, r, 1, 0);
}

/**
 * zᴮ-rule ("box" rule) for the input layer (Montavon et al. 2017; Zennit's ZBox), for inputs bounded by l ≤ a ≤ h:
 * R_j = Σ_k (a_j w_jk − l w⁺_jk − h w⁻_jk) / Σ_j (a_j w_jk − l w⁺_jk − h w⁻_jk) · R_k. The denominator is ≥ 0 when the
 * input lies in [l, h] and holds no bias (Zennit's three bias terms cancel), so Σ_j R_j = Σ_k R_k where it is not 0.
 */
export function zBoxRule(op: LinearOp, a: tf.Tensor, r: tf.Tensor, low: number, high: number): tf.Tensor {
  const wp = tf.relu(op.kernel);
  const wn = tf.minimum(op.kernel, 0);
  const lo = tf.fill(a.shape, low);
  const hi = tf.fill(a.shape, high);
  const z = tf.sub(tf.sub(op.apply(a, op.kernel, null), op.apply(lo, wp, null)), op.apply(hi, wn, null));
  const s = safeDivide(r, z);
  const back = (k: tf.Tensor, x: tf.Tensor) => tf.mul(x, tf.grad((v: tf.Tensor) => tf.sum(tf.mul(op.apply(v, k, null), s)))(x));
  return tf.sub(tf.sub(back(op.kernel, a), back(wp, lo)), back(wn, hi));
}

/** The rule of a linear layer that reads the model input (RelevanceOptions.firstLayer), or null: the other layers' rule. */
export function firstLayerRule(options: {
  firstLayer?: 'same' | 'z-plus' | 'z-box';
  low?: number;
  high?: number;
}): ((op: LinearOp, a: tf.Tensor, r: tf.Tensor) => tf.Tensor) | null {
  switch (options.firstLayer ?? 'same') {
    case 'z-plus':
      return zPlusRule;
    case 'z-box': {
      const { low, high } = options;
      if (low == null || high == null || !(low <= high))
        throw new SegGradCamError(`the zᴮ first-layer rule needs input bounds low ≤ high, got ${String(low)} and ${String(high)}`, 'usage');
      return (op, a, r) => zBoxRule(op, a, r, low, high);
    }
    default:
      return null;
  }
}

/** The refusal when a first-layer rule was asked for and no linear layer reads the model input. */
export function noFirstLayer(rule: string | undefined, first: string): SegGradCamError {
  return new SegGradCamError(
    `the LRP first-layer rule ${String(rule)} needs a linear layer (convolution or dense) that reads the model input; '${first}' reads it`,
    'model',
  );
}
