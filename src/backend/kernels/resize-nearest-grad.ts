/**
 * ResizeNearestNeighborGrad as the exact adjoint of tfjs's ResizeNearestNeighbor
 * forward (alignCorners, halfPixelCenters). In tfjs 4.22 the cpu kernel is wrong
 * even for a plain 2x upsampling (tf.layers.upSampling2d) and gives NaN when
 * downsampling; the wasm one is wrong with halfPixelCenters. Registered for both.
 */
import * as tf from '@tensorflow/tfjs';
import { jsOutputF32, type KernelArgs, kernelConfigs } from '../util.js';
import { resizeRatio } from './resize-bilinear-grad.js';

/** For each output index along one axis, the source index the forward reads. */
function nearestMap(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Int32Array {
  const ratio = resizeRatio(inSize, outSize, alignCorners);
  const src = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const f = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
    let s = Math.min(inSize - 1, alignCorners ? Math.round(f) : Math.floor(f));
    if (halfPixelCenters) s = Math.max(0, s);
    src[i] = s;
  }
  return src;
}

/** dx [B, H, W, C] (zeroed by the caller) += the gradient of dy [B, h, w, C]. */
export function resizeNearestGradInto(
  dy: Float32Array,
  dyShape: number[],
  imageShape: number[],
  alignCorners: boolean,
  halfPixelCenters: boolean,
  dx: Float32Array,
): void {
  const [B, H, W, C] = imageShape;
  const [, h, w] = dyShape;
  const rows = nearestMap(H, h, alignCorners, halfPixelCenters);
  const cols = nearestMap(W, w, alignCorners, halfPixelCenters);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < h; r++) {
      const rowOff = (b * H + rows[r]) * W;
      for (let c = 0; c < w; c++) {
        const off = (rowOff + cols[c]) * C;
        for (let d = 0; d < C; d++) dx[off + d] += dy[o++];
      }
    }
  }
}

export function resizeNearestGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { images, dy } = inputs;
  const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean };
  return jsOutputF32(backend, images.shape.slice(), [dy], (dx, g) =>
    resizeNearestGradInto(g, dy.shape, images.shape, !!alignCorners, !!halfPixelCenters, dx),
  );
}

export const resizeNearestGradConfigs = kernelConfigs(tf.ResizeNearestNeighborGrad, ['cpu', 'wasm'], resizeNearestGrad);
