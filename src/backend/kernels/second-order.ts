/**
 * Gradients that are themselves differentiable, for second derivatives (ShapleyCAM's Hessian-vector product, nested
 * tf.grad). TF.js keeps the tensors a gradient saves as clones; a clone of a kernel's *output* is recorded on the tape
 * before the kernel itself, so gradient functions that read saved outputs (Sigmoid, Tanh, Exp, Softmax) give values
 * the outer tape sees as constants: nested differentiation silently drops their second-order terms. The configs
 * below save the *input* instead and recompute the output from it (the same kernel on the same input: first-order
 * values are unchanged bit for bit).
 *
 * The gradient of our batch-norm gradient kernel (`SgcFusedBatchNormGrad`, ./batch-norm.ts), so that second
 * derivatives (ShapleyCAM's Hessian-vector product) pass through inference batch norms. With r = 1/√(var+ε),
 * g = γ (1 without a scale) and x̂ = x − mean, the kernel computes dx = dy·g·r, dMean = −g·r·Σdy,
 * dVar = −½·g·r³·Σ dy·x̂, dScale = r·Σ dy·x̂, dOffset = Σ dy (sums over every axis but the channel). Its gradient for
 * cotangents (u, μ, ν, σ, o) of those five outputs: w.r.t. dy, u·g·r − μ·g·r − ½ν·g·r³·x̂ + σ·r·x̂ + o; w.r.t. x,
 * dy·(−½ν·g·r³ + σ·r). Gradients w.r.t. the statistics and the scale are not provided (they are constants wherever
 * second derivatives are taken here): asking for them throws.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_BN_GRAD } from './batch-norm.js';

/** Sigmoid, Tanh, Exp and Softmax gradients from the saved input (see above). */
export function inputSavingGradConfigs(): tf.GradConfig[] {
  return [
    {
      kernelName: tf.Sigmoid,
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({
        x: () =>
          tf.tidy(() => {
            const y = tf.sigmoid(x);
            return tf.mul(dy as tf.Tensor, tf.mul(y, tf.sub(1, y)));
          }),
      }),
    },
    {
      kernelName: tf.Tanh,
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.tidy(() => tf.mul(tf.sub(1, tf.square(tf.tanh(x))), dy as tf.Tensor)) }),
    },
    {
      kernelName: tf.Exp,
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.tidy(() => tf.mul(dy as tf.Tensor, tf.exp(x))) }),
    },
    {
      kernelName: tf.Softmax,
      inputsToSave: ['logits'],
      gradFunc: (dy, [logits], attrs) => ({
        logits: () =>
          tf.tidy(() => {
            const { dim } = attrs as unknown as tf.SoftmaxAttrs;
            const y = tf.softmax(logits, dim);
            const dyTimesY = tf.mul(dy as tf.Tensor, y);
            return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y));
          }),
      }),
    },
  ];
}

export function batchNormSecondOrderConfig(): tf.GradConfig {
  return {
    kernelName: FUSED_BN_GRAD,
    inputsToSave: ['x', 'dy', 'mean', 'variance', 'scale'],
    gradFunc: (dys, saved, attrs) => {
      const [x, dy, mean, variance, scale] = saved;
      const [u, mu, nu, sigma, o] = dys as tf.Tensor[];
      const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
      const unsupported = (what: string) => () => {
        throw new Error(`the second derivative of batch normalisation w.r.t. its ${what} is not implemented`);
      };
      const r = () => tf.rsqrt(tf.add(variance, eps));
      const g = () => (scale == null ? tf.onesLike(mean) : scale);
      return {
        dy: () =>
          tf.tidy(() => {
            const [rr, gg] = [r(), g()];
            const xm = tf.sub(x, mean);
            const gr = tf.mul(gg, rr);
            const gr3 = tf.mul(gr, tf.mul(rr, rr));
            const perChannel = tf.sub(o, tf.mul(mu, gr));
            const perX = tf.add(tf.mul(nu, tf.mul(gr3, -0.5)), tf.mul(sigma, rr));
            return tf.add(tf.add(tf.mul(u, gr), perChannel), tf.mul(xm, perX));
          }),
        x: () =>
          tf.tidy(() => {
            const [rr, gg] = [r(), g()];
            const gr3 = tf.mul(tf.mul(gg, rr), tf.mul(rr, rr));
            return tf.mul(dy, tf.add(tf.mul(nu, tf.mul(gr3, -0.5)), tf.mul(sigma, rr)));
          }),
        mean: unsupported('mean'),
        variance: unsupported('variance'),
        scale: unsupported('scale'),
      };
    },
  };
}
