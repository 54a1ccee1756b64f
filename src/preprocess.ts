import * as tf from '@tensorflow/tfjs';
import type { RgbaImage } from './image.js';

export interface InputOptions {
  /** Pixel values 0..255 are mapped linearly to [lo, hi]. Default [0, 1]. */
  inputRange?: [number, number];
}

/** An image as the model's [1, H, W, C] float input: resized (bilinear) and scaled. */
export function imageToInput(image: RgbaImage, height: number, width: number, channels: number, options: InputOptions = {}): tf.Tensor4D {
  const [lo, hi] = options.inputRange ?? [0, 1];
  return tf.tidy(() => {
    const n = image.width * image.height;
    const rgb = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      rgb[i * 3] = image.data[i * 4];
      rgb[i * 3 + 1] = image.data[i * 4 + 1];
      rgb[i * 3 + 2] = image.data[i * 4 + 2];
    }
    let x = tf.tensor4d(rgb, [1, image.height, image.width, 3]);
    if (image.height !== height || image.width !== width) x = tf.image.resizeBilinear(x, [height, width], false, true);
    if (channels === 1) x = tf.mean(x, -1, true);
    else if (channels !== 3) throw new Error(`models with ${channels} input channels are not supported`);
    return x.mul((hi - lo) / 255).add(lo) as tf.Tensor4D;
  });
}
