import * as tf from '@tensorflow/tfjs';

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
