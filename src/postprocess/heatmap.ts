import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';

/**
 * How a map becomes a [0, 1] heatmap: 'max' divides by the maximum (our default: 0 stays 0, so an unimportant
 * pixel stays blank); 'minmax' maps [min, max] to [0, 1] as pytorch-grad-cam's scale_cam_image does.
 */
export type Normalization = 'max' | 'minmax';

export const NORMALIZATIONS: readonly Normalization[] = ['max', 'minmax'];

/** A normalisation name from text (a CLI flag, a URL), or a typed usage error naming the choices. */
export function parseNormalization(text: string): Normalization {
  if ((NORMALIZATIONS as readonly string[]).includes(text)) return text as Normalization;
  throw new SegGradCamError(`unknown normalization '${text}'; expected ${NORMALIZATIONS.join(' or ')}`, 'usage');
}

/**
 * Upsamples a CAM [h, w] to the image (bilinear, half-pixel centres: the CAM's cells cover
 * the whole input) and scales it to [0, 1] (see Normalization). A CAM that is zero everywhere
 * stays zero and is reported as empty — never divided by zero. Non-finite values count as 0.
 */
export function camToHeatmap(
  cam: tf.Tensor2D,
  width: number,
  height: number,
  normalization: Normalization = 'max',
): { heatmap: Float32Array; max: number; empty: boolean } {
  const up = tf.tidy(() => {
    const [h, w] = cam.shape;
    const x = cam.reshape([1, h, w, 1]) as tf.Tensor4D;
    return tf.image.resizeBilinear(x, [height, width], false, true).reshape([height * width]);
  });
  const heatmap = up.dataSync() as Float32Array;
  up.dispose();
  return normalizeInPlace(heatmap, normalization);
}

/**
 * Scales a map to [0, 1] in place, after setting negative and non-finite values to 0 (maps are after ReLU).
 * 'max': v / max. 'minmax': (v − min) / (max − min); a constant map (max = min) becomes all zeros and is empty.
 * `max` is the map's maximum either way.
 */
export function normalizeInPlace(
  map: Float32Array,
  normalization: Normalization = 'max',
): { heatmap: Float32Array; max: number; empty: boolean } {
  let max = 0;
  let min = Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v) || v < 0) map[i] = 0;
    else if (v > max) max = v;
    if (map[i] < min) min = map[i];
  }
  if (normalization === 'minmax') {
    const range = max - min;
    if (range > 0) for (let i = 0; i < map.length; i++) map[i] = (map[i] - min) / range;
    else map.fill(0);
    return { heatmap: map, max, empty: range === 0 };
  }
  if (max > 0) for (let i = 0; i < map.length; i++) map[i] /= max;
  return { heatmap: map, max, empty: max === 0 };
}
