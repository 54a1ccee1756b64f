import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER, type ForwardPass, type Objective } from '../engine/contract.js';
import { toOutputCell } from '../region/region.js';

/**
 * The pixels M's score depends on at this image: those where ∂S/∂x ≠ 0 in some channel (the
 * effective receptive field of M). Outside it no change of the pixel changes S to first order,
 * so a heatmap there cannot be about M. Pixels of the image are mapped to the model input cell
 * that contains their centre. Returns a 0/1 mask of imageWidth × imageHeight.
 */
export async function receptiveField(
  pass: ForwardPass,
  objective: Objective,
  image: { width: number; height: number },
): Promise<Uint8Array> {
  const { activations, gradients } = await pass.gradient(INPUT_LAYER, objective);
  const [, h, w] = gradients.shape;
  const magnitude = tf.tidy(() => tf.sum(tf.abs(gradients), -1).reshape([h * w]));
  const g = await magnitude.data();
  tf.dispose([activations, gradients, magnitude]);
  const field = new Uint8Array(image.width * image.height);
  const grid = { imageWidth: image.width, imageHeight: image.height, outWidth: w, outHeight: h };
  for (let y = 0; y < image.height; y++)
    for (let x = 0; x < image.width; x++) {
      const [cx, cy] = toOutputCell(x, y, grid);
      field[y * image.width + x] = g[cy * w + cx] > 0 ? 1 : 0;
    }
  return field;
}

/** Zeroes the heatmap outside the field (in place). */
export function truncateHeatmap(heatmap: Float32Array, field: Uint8Array): Float32Array {
  for (let i = 0; i < heatmap.length; i++) if (!field[i]) heatmap[i] = 0;
  return heatmap;
}
