import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';

/**
 * The reference input of path and deletion methods (Integrated Gradients, Grid Saliency,
 * Score-CAM's masking): 'black' = the bottom of the input range (pixel 0), 'blurred' = the
 * input under a Gaussian blur (σ = 1/16 of the larger side, borders renormalised, so
 * brightness does not sag at the edges), or a constant in the model's input units.
 * 'mean': every pixel the image's mean per channel (KernelSHAP's other usual background).
 */
export type Baseline = 'black' | 'blurred' | 'mean' | number;

export function baselineFor(input: tf.Tensor4D, baseline: Baseline, inputRange: [number, number]): tf.Tensor4D {
  if (baseline === 'black') return tf.fill(input.shape, inputRange[0]) as tf.Tensor4D;
  if (typeof baseline === 'number') {
    if (!Number.isFinite(baseline)) throw new SegGradCamError(`baseline must be a finite number, got ${baseline}`, 'usage');
    return tf.fill(input.shape, baseline) as tf.Tensor4D;
  }
  if (baseline === 'blurred') return gaussianBlur(input, Math.max(input.shape[1], input.shape[2]) / 16);
  if (baseline === 'mean') return tf.tidy(() => tf.broadcastTo(tf.mean(input, [1, 2], true), input.shape) as tf.Tensor4D);
  throw new SegGradCamError(`unknown baseline '${String(baseline)}'; expected black, blurred, mean or a number`, 'usage');
}

export function parseBaseline(text: string): Baseline {
  if (text === 'black' || text === 'blurred' || text === 'mean') return text;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v))
    throw new SegGradCamError(`--baseline expects black, blurred or a number, got '${text}'`, 'usage');
  return v;
}

/** Separable Gaussian blur per channel, zero padding divided out (a normalised convolution). */
export function gaussianBlur(x: tf.Tensor4D, sigma: number): tf.Tensor4D {
  return tf.tidy(() => {
    const radius = Math.max(1, Math.ceil(2.5 * sigma));
    const taps = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
    const total = taps.reduce((a, b) => a + b, 0);
    const c = x.shape[3];
    const k = tf.tensor1d(taps.map((t) => t / total));
    const kh = tf.tile(k.reshape([2 * radius + 1, 1, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    const kw = tf.tile(k.reshape([1, 2 * radius + 1, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    const blur = (t: tf.Tensor4D) => tf.depthwiseConv2d(tf.depthwiseConv2d(t, kh, 1, 'same'), kw, 1, 'same');
    return tf.div(blur(x), blur(tf.onesLike(x))) as tf.Tensor4D;
  });
}
