/**
 * AvgPoolGrad as the exact adjoint of AvgPool.
 *
 * The forward (cpu and wasm alike) divides each window by the number of
 * positions inside the image ('same' padding excluded, as in TensorFlow), but
 * the stock gradients of tfjs 4.22 (cpu and wasm) divide by the full window
 * size: wrong along the borders with 'same' padding. 'valid' pooling (e.g. a
 * global average) was already right. Registered for cpu and wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { jsOutputF32, type KernelArgs, kernelConfigs, poolInfo } from '../util.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

/** How many of the taps start, start+step, … (below `extent`) fall inside [0, size). */
function tapsInside(start: number, extent: number, step: number, size: number): number {
  let n = 0;
  for (let i = 0; i < extent; i += step) if (start + i >= 0 && start + i < size) n++;
  return n;
}

/** dx (zeroed by the caller) += the average-pool gradient of dy (NHWC). */
export function avgPoolGradInto(dy: Float32Array, dx: Float32Array, info: PoolInfo): void {
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: oH,
    outWidth: oW,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    effectiveFilterHeight: fh,
    effectiveFilterWidth: fw,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  let o = 0;
  for (let b = 0; b < B; b++) {
    const base = b * H * W * C;
    for (let oh = 0; oh < oH; oh++) {
      const h0 = oh * sh - pt;
      const rows = tapsInside(h0, fh, dh, H);
      for (let ow = 0; ow < oW; ow++, o += C) {
        const w0 = ow * sw - pl;
        // The window is a product of its row and column taps.
        const count = rows * tapsInside(w0, fw, dw, W);
        if (count === 0) continue;
        const scale = 1 / count;
        for (let i = 0; i < fh; i += dh) {
          const h = h0 + i;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < fw; j += dw) {
            const w = w0 + j;
            if (w < 0 || w >= W) continue;
            const off = base + (h * W + w) * C;
            for (let c = 0; c < C; c++) dx[off + c] += dy[o + c] * scale;
          }
        }
      }
    }
  }
}

export function avgPoolGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { dy, input } = inputs;
  const info = poolInfo(input.shape, attrs);
  return jsOutputF32(backend, input.shape.slice(), [dy], (dx, g) => avgPoolGradInto(g, dx, info));
}

export const avgPoolGradConfigs = kernelConfigs(tf.AvgPoolGrad, ['cpu', 'wasm'], avgPoolGrad);
