import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { HessianProduct } from '../contract.js';

/**
 * S = f(a), g = ∂S/∂a and the Hessian-vector product H·a = ∇_a (g(a) · v) with v = a held constant (ShapleyCAM's
 * second-order term), by nested reverse-mode differentiation: exact, no step size. Piecewise-linear parts (ReLU,
 * max-pooling) contribute their almost-everywhere second derivative, zero. An op without a differentiable gradient
 * is a typed refusal naming TF.js's reason. The tensors returned belong to the caller; `a` is not consumed.
 */
export function tfjsHessianProduct(f: (a: tf.Tensor) => tf.Scalar, a: tf.Tensor, engine: string): HessianProduct {
  const v = tf.keep(a.clone());
  try {
    const { value, grad } = tf.tidy(() => tf.valueAndGrad(f)(a));
    const score = value.dataSync()[0];
    value.dispose();
    let hessianProduct: tf.Tensor;
    try {
      // + 0·Σx: where ∂S/∂a does not depend on a (S linear in a) the product is 0, not a TF.js "y does not depend on x" error.
      const gv = (x: tf.Tensor) => tf.add(tf.sum(tf.mul(tf.grad(f)(x), v)), tf.mul(tf.sum(x), 0)) as tf.Scalar;
      hessianProduct = tf.tidy(() => tf.grad(gv)(a));
    } catch (err) {
      grad.dispose();
      throw new SegGradCamError(
        `shapley-cam needs second derivatives, which TF.js cannot take through this ${engine}: ${(err as Error).message}`,
        'model',
      );
    }
    return {
      activations: a.clone() as tf.Tensor4D,
      gradients: grad as tf.Tensor4D,
      hessianProduct: hessianProduct as tf.Tensor4D,
      score,
    };
  } finally {
    v.dispose();
  }
}
