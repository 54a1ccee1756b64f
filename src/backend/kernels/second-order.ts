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

/**
 * The gradient of TF.js's AvgPoolGrad (which has none), so second derivatives pass through average pooling (the
 * selfie GraphModel's squeeze-and-excitation pools). AvgPoolGrad(dy) is linear in dy and is the adjoint of average
 * pooling with the same window, strides and padding (both divide by the count of valid cells); its own adjoint, the
 * gradient w.r.t. dy, is therefore that average pooling applied to the cotangent. It does not depend on the input
 * (zero gradient).
 */
export function avgPoolGradSecondOrderConfig(): tf.GradConfig {
  return {
    kernelName: tf.AvgPoolGrad,
    inputsToSave: ['input'],
    gradFunc: (ddx, [input], attrs) => {
      const { filterSize, strides, pad } = attrs as unknown as tf.AvgPoolGradAttrs;
      return {
        dy: () => tf.avgPool(ddx as tf.Tensor4D, filterSize, strides, pad as 'valid' | 'same' | number),
        input: () => tf.zerosLike(input),
      };
    },
  };
}

/**
 * The gradients of ResizeBilinearGrad and ResizeNearestNeighborGrad (TF.js has none), for the same reason: each is
 * linear in dy and is the adjoint of its resize (same alignCorners / halfPixelCenters), so its own adjoint — the
 * gradient w.r.t. dy — is that resize of the cotangent to dy's size. Zero w.r.t. the images.
 */
export function resizeGradSecondOrderConfigs(): tf.GradConfig[] {
  const config = (kernelName: string, resize: typeof tf.image.resizeBilinear): tf.GradConfig => ({
    kernelName,
    inputsToSave: ['images', 'dy'],
    gradFunc: (ddx, [images, dy], attrs) => {
      const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeBilinearGradAttrs;
      const [, h, w] = dy.shape;
      return {
        dy: () => resize(ddx as tf.Tensor4D, [h, w], alignCorners, halfPixelCenters),
        images: () => tf.zerosLike(images),
      };
    },
  });
  return [config(tf.ResizeBilinearGrad, tf.image.resizeBilinear), config(tf.ResizeNearestNeighborGrad, tf.image.resizeNearestNeighbor)];
}

/**
 * The gradient of DepthwiseConv2dNativeBackpropInput w.r.t. dy (TF.js has none): linear in dy and the adjoint of the
 * depthwise convolution with the same filter, strides, padding and dilations, so its adjoint is that convolution of
 * the cotangent. W.r.t. the filter it is not provided (weights are constants wherever second derivatives are taken
 * here): asking for it throws.
 */
export function depthwiseBackpropInputSecondOrderConfig(): tf.GradConfig {
  return {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    inputsToSave: ['filter'],
    gradFunc: (ddx, [filter], attrs) => {
      const { strides, pad, dilations, dimRoundingMode } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
      return {
        dy: () => tf.depthwiseConv2d(ddx as tf.Tensor4D, filter as tf.Tensor4D, strides, pad, 'NHWC', dilations, dimRoundingMode),
        filter: () => {
          throw new Error('the second derivative of a depthwise convolution w.r.t. its filter is not implemented');
        },
      };
    },
  };
}
