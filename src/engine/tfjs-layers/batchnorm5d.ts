import * as tf from '@tensorflow/tfjs';

/* The fields of tfjs-layers' BatchNormalization that inference reads. */
interface BatchNormFields {
  getClassName(): string;
  axis: number | number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
  movingMean: { read(): tf.Tensor };
  movingVariance: { read(): tf.Tensor };
  gamma: { read(): tf.Tensor } | null;
  beta: { read(): tf.Tensor } | null;
}

/**
 * BatchNormalization at inference on a 5-D input ([1, D, H, W, C], channels last), which
 * tfjs-layers refuses ("batchNormalization is not implemented for array of rank 5 yet"):
 * (x − mean) / √(var + ε) · γ + β, broadcast along the last axis. Null when the layer is not a
 * last-axis BatchNormalization on a 5-D input (the layer's own call then runs).
 */
export function batchNorm5d(layer: unknown, inputs: tf.Tensor[]): tf.Tensor[] | null {
  const l = layer as BatchNormFields;
  if (l.getClassName() !== 'BatchNormalization' || inputs.length !== 1 || inputs[0].rank !== 5) return null;
  const axis = Array.isArray(l.axis) ? l.axis : [l.axis];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 4)) return null;
  return tf.tidy(() => {
    let factor = tf.rsqrt(tf.add(l.movingVariance.read(), l.epsilon));
    if (l.scale && l.gamma) factor = tf.mul(factor, l.gamma.read());
    let y = tf.mul(tf.sub(inputs[0], l.movingMean.read()), factor);
    if (l.center && l.beta) y = tf.add(y, l.beta.read());
    return [y];
  });
}
