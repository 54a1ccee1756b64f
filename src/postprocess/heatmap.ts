import * as tf from '@tensorflow/tfjs';

/**
 * Upsamples a CAM [h, w] to the image (bilinear, half-pixel centres: the CAM's cells cover
 * the whole input) and scales it to [0, 1] by its maximum. A CAM that is zero everywhere
 * stays zero and is reported as empty — never divided by zero. Non-finite values count as 0.
 */
export function camToHeatmap(cam: tf.Tensor2D, width: number, height: number): { heatmap: Float32Array; max: number; empty: boolean } {
  const up = tf.tidy(() => {
    const [h, w] = cam.shape;
    const x = cam.reshape([1, h, w, 1]) as tf.Tensor4D;
    return tf.image.resizeBilinear(x, [height, width], false, true).reshape([height * width]);
  });
  const heatmap = up.dataSync() as Float32Array;
  up.dispose();
  return normalizeInPlace(heatmap);
}

export function normalizeInPlace(map: Float32Array): { heatmap: Float32Array; max: number; empty: boolean } {
  let max = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v) || v < 0) map[i] = 0;
    else if (v > max) max = v;
  }
  if (max > 0) for (let i = 0; i < map.length; i++) map[i] /= max;
  return { heatmap: map, max, empty: max === 0 };
}
