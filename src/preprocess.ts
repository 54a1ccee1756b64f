import * as tf from '@tensorflow/tfjs';
import type { RgbaImage } from './image.js';
import { resizeRgbaToRgb } from './render/resize.js';

export interface InputOptions {
  /** Pixel values 0..255 are mapped linearly to [lo, hi]. Default [0, 1]. */
  inputRange?: [number, number];
}

/**
 * An image as the model's [1, H, W, C] float input: resized (bilinear, half-pixel centres) and
 * scaled. The resize reads the RGBA bytes directly, so a large image costs no float copy of itself.
 */
export function imageToInput(image: RgbaImage, height: number, width: number, channels: number, options: InputOptions = {}): tf.Tensor4D {
  const [lo, hi] = options.inputRange ?? [0, 1];
  return tf.tidy(() => {
    const rgb = resizeRgbaToRgb(image, width, height);
    let x = tf.tensor4d(rgb, [1, height, width, 3]);
    if (channels === 1) x = tf.mean(x, -1, true);
    else if (channels !== 3) throw new Error(`models with ${channels} input channels are not supported`);
    // (v · (hi − lo)) / 255 + lo, in that order: for [0, 1] the input is v / 255 correctly rounded,
    // as PyTorch's `ToTensor` and `np.asarray(img) / 255` give (v · (1/255) differs in the last bit,
    // and a network with a decision near zero can amplify that: docs/zoo.md, DeepLabV3's encoder).
    return (hi - lo === 1 ? x : x.mul(hi - lo)).div(255).add(lo) as tf.Tensor4D;
  });
}
