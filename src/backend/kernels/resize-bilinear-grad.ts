/**
 * ResizeBilinearGrad as the exact adjoint of tfjs's ResizeBilinear forward
 * (alignCorners and halfPixelCenters included).
 *
 * tfjs-backend-cpu 4.22's kernel returns shape [batch, width, height, depth]
 * (wrong on non-square maps) and ignores halfPixelCenters. We register this one
 * for cpu, and for wasm too (one implementation, verified in the tests).
 */
import * as tf from '@tensorflow/tfjs';
import { jsOutputF32, type KernelArgs, kernelConfigs, size } from '../util.js';

/** Source-over-output scale along one axis of tfjs's resize forwards (alignCorners maps corner to corner). */
export function resizeRatio(inSize: number, outSize: number, alignCorners: boolean): number {
  return alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
}

function axisMap(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean) {
  const ratio = resizeRatio(inSize, outSize, alignCorners);
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

/** dx [B, H, W, C] (zeroed by the caller) += the gradient of dy [B, h, w, C]. */
export function resizeBilinearGradInto(
  dy: Float32Array,
  dyShape: number[],
  imageShape: number[],
  alignCorners: boolean,
  halfPixelCenters: boolean,
  dx: Float32Array,
): void {
  const [B, H, W, C] = imageShape;
  const [, h, w] = dyShape;
  const rows = axisMap(H, h, alignCorners, halfPixelCenters);
  const cols = axisMap(W, w, alignCorners, halfPixelCenters);
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
}

/** dx [B, H, W, C] from dy [B, h, w, C], in a new array. */
export function resizeBilinearGradJs(
  dy: Float32Array,
  dyShape: number[],
  imageShape: number[],
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Float32Array {
  const dx = new Float32Array(size(imageShape));
  resizeBilinearGradInto(dy, dyShape, imageShape, alignCorners, halfPixelCenters, dx);
  return dx;
}

export function resizeBilinearGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { images, dy } = inputs;
  const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean };
  return jsOutputF32(backend, images.shape.slice(), [dy], (dx, g) =>
    resizeBilinearGradInto(g, dy.shape, images.shape, !!alignCorners, !!halfPixelCenters, dx),
  );
}

export const resizeBilinearGradConfigs = kernelConfigs(tf.ResizeBilinearGrad, ['cpu', 'wasm'], resizeBilinearGrad);
