/**
 * ResizeNearestNeighborGrad as the exact adjoint of tfjs's ResizeNearestNeighbor
 * forward (alignCorners, halfPixelCenters). In tfjs 4.22 the cpu kernel is wrong
 * even for a plain 2x upsampling (tf.layers.upSampling2d) and gives NaN when
 * downsampling; the wasm one is wrong with halfPixelCenters. Registered for both.
 */
import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, makeOutputF32, readF32 } from '../util.js';

/** For each output index along one axis, the source index the forward reads. */
function nearestMap(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Int32Array {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const src = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const f = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
    let s = Math.min(inSize - 1, alignCorners ? Math.round(f) : Math.floor(f));
    if (halfPixelCenters) s = Math.max(0, s);
    src[i] = s;
  }
  return src;
}

export function resizeNearestGradJs(
  dy: Float32Array, dyShape: number[], imageShape: number[], alignCorners: boolean, halfPixelCenters: boolean,
): Float32Array {
  const [B, H, W, C] = imageShape;
  const [, h, w] = dyShape;
  const rows = nearestMap(H, h, alignCorners, halfPixelCenters);
  const cols = nearestMap(W, w, alignCorners, halfPixelCenters);
  const dx = new Float32Array(B * H * W * C);
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
  return dx;
}

export function resizeNearestGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { images, dy } = inputs;
  const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean };
  const dx = resizeNearestGradJs(readF32(backend, dy), dy.shape, images.shape, !!alignCorners, !!halfPixelCenters);
  return makeOutputF32(backend, images.shape.slice(), dx);
}

export const resizeNearestGradConfigs: tf.KernelConfig[] = ['cpu', 'wasm'].map((backendName) => ({
  kernelName: tf.ResizeNearestNeighborGrad,
  backendName,
  kernelFunc: resizeNearestGrad as unknown as tf.KernelFunc,
}));
