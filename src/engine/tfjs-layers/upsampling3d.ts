import * as tf from '@tensorflow/tfjs';

/**
 * Keras's UpSampling3D (nearest: each voxel repeated size[i] times along depth, height and
 * width), which tfjs-layers does not ship: a Keras 3-D U-Net converted with tensorflowjs_converter
 * names it in its model.json, and loading fails with "Unknown layer: UpSampling3D" unless a class
 * of that name is registered. Registered when this module loads (the tfjs-layers engine imports
 * it). Channels last only (Keras's default).
 */
export class UpSampling3D extends tf.layers.Layer {
  static className = 'UpSampling3D';
  readonly size: [number, number, number];
  readonly dataFormat: string;

  constructor(
    args: { size?: number | number[]; dataFormat?: string; name?: string; inputShape?: number[]; batchInputShape?: number[] } = {},
  ) {
    super(args);
    const s = args.size ?? 2;
    this.size = (typeof s === 'number' ? [s, s, s] : [s[0], s[1] ?? s[0], s[2] ?? s[0]]) as [number, number, number];
    this.dataFormat = args.dataFormat ?? 'channelsLast';
    if (this.dataFormat !== 'channelsLast') throw new Error(`UpSampling3D: only channelsLast is supported, not ${this.dataFormat}`);
    if (this.size.some((x) => !Number.isInteger(x) || x < 1))
      throw new Error(`UpSampling3D: size must be positive integers, not ${String(s)}`);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0], ...[1, 2, 3].map((i) => (s[i] == null ? null : (s[i] as number) * this.size[i - 1])), s[4]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [n, d, h, w, c] = x.shape;
      const [a, b, e] = this.size;
      // [n, d, 1, h, 1, w, 1, c] tiled to [n, d, a, h, b, w, e, c]: every voxel repeated.
      const r = tf.tile(tf.reshape(x, [n, d, 1, h, 1, w, 1, c]), [1, 1, a, 1, b, 1, e, 1]);
      return tf.reshape(r, [n, d * a, h * b, w * e, c]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), size: [...this.size], dataFormat: this.dataFormat };
  }
}
tf.serialization.registerClass(UpSampling3D);

/** UpSampling3D's VJP: the cotangent summed over each voxel's block. */
export function upSampling3dGrad(dy: tf.Tensor, size: [number, number, number]): tf.Tensor {
  const [k, d, h, w, c] = dy.shape;
  const [a, b, e] = size;
  return tf.sum(tf.reshape(dy, [k, d / a, a, h / b, b, w / e, e, c]), [2, 4, 6]);
}
