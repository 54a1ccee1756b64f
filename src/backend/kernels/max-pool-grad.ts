/**
 * MaxPoolGrad: the gradient goes to the FIRST maximum of each window (row-major
 * order, padding excluded), as on the cpu backend and in TensorFlow.
 *
 * The stock wasm kernel starts its running max at +FLT_MIN, so a window whose
 * values are all <= 0 sends its gradient to element 0 of the window: wrong.
 */
import * as tf from '@tensorflow/tfjs';
import { jsOutputF32, type KernelArgs, kernelConfigs, poolInfo, type WasmBackendLike } from '../util.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

/** dx (zeroed by the caller) += scatter of dy onto the first max of each window of x (NHWC). */
export function maxPoolGradInto(x: Float32Array, dy: Float32Array, dx: Float32Array, info: PoolInfo): void {
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels: C,
    outHeight,
    outWidth,
    strideHeight,
    strideWidth,
    dilationHeight,
    dilationWidth,
    effectiveFilterHeight,
    effectiveFilterWidth,
  } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  let dyOff = 0;
  for (let b = 0; b < batchSize; b++) {
    const bOff = b * inHeight * inWidth * C;
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - padTop;
      for (let ow = 0; ow < outWidth; ow++, dyOff += C) {
        const w0 = ow * strideWidth - padLeft;
        best.fill(-Infinity);
        where.fill(-1);
        for (let fh = 0; fh < effectiveFilterHeight; fh += dilationHeight) {
          const h = h0 + fh;
          if (h < 0 || h >= inHeight) continue;
          for (let fw = 0; fw < effectiveFilterWidth; fw += dilationWidth) {
            const w = w0 + fw;
            if (w < 0 || w >= inWidth) continue;
            const off = bOff + (h * inWidth + w) * C;
            for (let c = 0; c < C; c++) {
              const v = x[off + c];
              if (v > best[c]) {
                best[c] = v;
                where[c] = off + c;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) {
          const i = where[c];
          if (i >= 0) dx[i] += dy[dyOff + c];
        }
      }
    }
  }
}

export function maxPoolGradWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { dy, input } = inputs;
  const info = poolInfo(input.shape, attrs);
  return jsOutputF32(backend, input.shape.slice(), [input, dy], (dx, x, g) => maxPoolGradInto(x, g, dx, info));
}

export const maxPoolGradConfigs = kernelConfigs(tf.MaxPoolGrad, ['wasm'], maxPoolGradWasm);
