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
import { type KernelArgs, makeOutputF32, readF32 } from '../util.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

export function avgPoolGradJs(dy: Float32Array, info: PoolInfo): Float32Array {
  const {
    batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: oH, outWidth: oW,
    strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw,
    effectiveFilterHeight: fh, effectiveFilterWidth: fw,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const dx = new Float32Array(B * H * W * C);
  let o = 0;
  for (let b = 0; b < B; b++) {
    const base = b * H * W * C;
    for (let oh = 0; oh < oH; oh++) {
      const h0 = oh * sh - pt;
      for (let ow = 0; ow < oW; ow++, o += C) {
        const w0 = ow * sw - pl;
        let count = 0;
        for (let i = 0; i < fh; i += dh) {
          const h = h0 + i;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < fw; j += dw) {
            const w = w0 + j;
            if (w >= 0 && w < W) count++;
          }
        }
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
  return dx;
}

export function avgPoolGrad({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo {
  const { dy, input } = inputs;
  const { filterSize, strides, pad } = attrs as unknown as tf.AvgPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad);
  return makeOutputF32(backend, input.shape.slice(), avgPoolGradJs(readF32(backend, dy), info));
}

export const avgPoolGradCpuConfig: tf.KernelConfig = {
  kernelName: tf.AvgPoolGrad, backendName: 'cpu', kernelFunc: avgPoolGrad as unknown as tf.KernelFunc,
};
export const avgPoolGradWasmConfig: tf.KernelConfig = {
  kernelName: tf.AvgPoolGrad, backendName: 'wasm', kernelFunc: avgPoolGrad as unknown as tf.KernelFunc,
};
