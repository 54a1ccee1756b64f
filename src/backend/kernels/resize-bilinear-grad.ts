/**
 * ResizeBilinearGrad as the exact adjoint of tfjs's ResizeBilinear forward
 * (alignCorners and halfPixelCenters included).
 *
 * tfjs-backend-cpu 4.22's kernel returns shape [batch, width, height, depth]
 * (wrong on non-square maps) and ignores halfPixelCenters. We register this one
 * for cpu, and for wasm too (one implementation, verified in the tests).
 */
import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, makeOutputF32, readF32 } from '../util.js';

function axisMap(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean) {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const f = halfPixelCenters ? ratio * (i + 0.5) - 0.5 : ratio * i;
    const l = Math.max(0, Math.floor(f));
    lo[i] = l;
    hi[i] = Math.min(inSize - 1, Math.ceil(f));
    frac[i] = f - l;
  }
  return { lo, hi, frac };
}

/** dx [B, H, W, C] from dy [B, h, w, C]. */
export function resizeBilinearGradJs(
  dy: Float32Array, dyShape: number[], imageShape: number[], alignCorners: boolean, halfPixelCenters: boolean,
): Float32Array {
  const [B, H, W, C] = imageShape;
  const [, h, w] = dyShape;
  const rows = axisMap(H, h, alignCorners, halfPixelCenters);
  const cols = axisMap(W, w, alignCorners, halfPixelCenters);
  const dx = new Float32Array(B * H * W * C);
  let o = 0;
  for (let b = 0; b < B; b++) {
    const base = b * H * W * C;
    for (let r = 0; r < h; r++) {
      const top = base + rows.lo[r] * W * C;
      const bot = base + rows.hi[r] * W * C;
      const rf = rows.frac[r];
      for (let c = 0; c < w; c++) {
        const left = cols.lo[c] * C;
        const right = cols.hi[c] * C;
        const cf = cols.frac[c];
        const wTL = (1 - rf) * (1 - cf);
        const wTR = (1 - rf) * cf;
        const wBL = rf * (1 - cf);
        const wBR = rf * cf;
        for (let d = 0; d < C; d++, o++) {
          const g = dy[o];
          dx[top + left + d] += g * wTL;
          dx[top + right + d] += g * wTR;
          dx[bot + left + d] += g * wBL;
          dx[bot + right + d] += g * wBR;
        }
      }
    }
  }
  return dx;
}

export function resizeBilinearGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { images, dy } = inputs;
  const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean };
  const dx = resizeBilinearGradJs(readF32(backend, dy), dy.shape, images.shape, !!alignCorners, !!halfPixelCenters);
  return makeOutputF32(backend, images.shape.slice(), dx);
}

export const resizeBilinearGradCpuConfig: tf.KernelConfig = {
  kernelName: tf.ResizeBilinearGrad,
  backendName: 'cpu',
  kernelFunc: resizeBilinearGrad as unknown as tf.KernelFunc,
};

export const resizeBilinearGradWasmConfig: tf.KernelConfig = {
  kernelName: tf.ResizeBilinearGrad,
  backendName: 'wasm',
  kernelFunc: resizeBilinearGrad as unknown as tf.KernelFunc,
};
