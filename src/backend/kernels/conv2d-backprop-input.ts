/**
 * Conv2DBackpropInput for wasm (also the FORWARD of conv2dTranspose).
 *
 * The stock wasm kernel is a naive loop that dominates backward time. Fast paths:
 *  - stride 1: dx is a forward convolution of dy with the kernel rotated 180°
 *    and its in/out channels swapped, padded by (K-1-pad) — run by XNNPACK.
 *  - stride > 1 (notably kernel 2 stride 2, the U-Net up-convolution): one
 *    matMul P = dy[M, Cout] · Wᵀ[Cout, KH·KW·Cin] followed by a scatter-add of P
 *    into dx (col2im), done in JS on the heap.
 *  - NCHW or anything else: the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { callKernel, convInfo, heapF32, type KernelArgs, kernelConfigs, wasmAlloc, type WasmBackendLike, wasmFree } from '../util.js';

type ConvInfo = tf.backend_util.Conv2DInfo;
type ExplicitPadding = tf.backend_util.ExplicitPadding;

export function conv2dBackpropInputWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo((attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape, filter.shape, attrs);
  if (info.dataFormat === 'channelsLast') {
    if (info.strideHeight === 1 && info.strideWidth === 1) {
      const pad = rotatedConvPad(info);
      if (pad) return viaRotatedConv(backend, dy, filter, info, pad);
    } else {
      return viaMatMulScatter(backend, dy, filter, info);
    }
  }
  return callKernel(tf.Conv2DBackpropInput, 'wasm', backend, inputs, attrs);
}

/**
 * For a stride-1, dilation-1 convolution: the padding under which convolving dy
 * with the kernel rotated 180° gives the input gradient (K-1-pad on each side);
 * null when a side would be negative.
 */
export function rotatedConvPad(info: ConvInfo): ExplicitPadding | null {
  const { inHeight: H, inWidth: W, outHeight: oH, outWidth: oW, filterHeight: KH, filterWidth: KW } = info;
  const top = KH - 1 - info.padInfo.top;
  const left = KW - 1 - info.padInfo.left;
  const bottom = H - oH - top + KH - 1;
  const right = W - oW - left + KW - 1;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return null;
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/** W[kh,kw,ci,co] -> W'[KH-1-kh, KW-1-kw, co, ci] into `out`. */
export function rotateSwap(w: Float32Array, out: Float32Array, KH: number, KW: number, Ci: number, Co: number): void {
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = (kh * KW + kw) * Ci * Co;
      const dst = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * Co * Ci;
      for (let ci = 0; ci < Ci; ci++) {
        const s = src + ci * Co;
        for (let co = 0; co < Co; co++) out[dst + co * Ci + ci] = w[s + co];
      }
    }
  }
}

function viaRotatedConv(
  backend: WasmBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: ConvInfo,
  pad: ExplicitPadding,
): tf.TensorInfo {
  const { filterHeight: KH, filterWidth: KW, inChannels: Ci, outChannels: Co } = info;
  const wT = wasmAlloc(backend, [KH, KW, Co, Ci]);
  rotateSwap(heapF32(backend, filter), heapF32(backend, wT), KH, KW, Ci, Co);
  const dx = callKernel(
    'Conv2D',
    'wasm',
    backend,
    { x: dy, filter: wT },
    {
      strides: [1, 1],
      pad,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined,
    },
  );
  wasmFree(backend, wT);
  return dx;
}

function viaMatMulScatter(backend: WasmBackendLike, dy: tf.TensorInfo, filter: tf.TensorInfo, info: ConvInfo): tf.TensorInfo {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    outHeight: oH,
    outWidth: oW,
    filterHeight: KH,
    filterWidth: KW,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  const Ci = info.inChannels;
  const Co = info.outChannels;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = KH * KW * Ci;
  const M = N * oH * oW;
  // Wᵀ[co, (kh,kw,ci)] laid out in JS (BatchMatMul with transposeB is slow on wasm).
  const wT = wasmAlloc(backend, [Co, K]);
  {
    const w = heapF32(backend, filter);
    const d = heapF32(backend, wT);
    for (let k = 0; k < K; k++) {
      const s = k * Co;
      for (let co = 0; co < Co; co++) d[co * K + k] = w[s + co];
    }
  }
  const dy2 = { dataId: dy.dataId, shape: [M, Co], dtype: dy.dtype };
  const p = callKernel(tf.BatchMatMul, 'wasm', backend, { a: dy2, b: wT }, { transposeA: false, transposeB: false });
  wasmFree(backend, wT);
  const dx = wasmAlloc(backend, [N, H, W, Ci]);
  const pv = heapF32(backend, p);
  const dxv = heapF32(backend, dx);
  dxv.fill(0);
  const overlap = KH > sh || KW > sw;
  let m = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++, m++) {
        for (let kh = 0; kh < KH; kh++) {
          const h = oh * sh + kh - pt;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const w = ow * sw + kw - pl;
            if (w < 0 || w >= W) continue;
            const src = m * K + (kh * KW + kw) * Ci;
            const dst = ((n * H + h) * W + w) * Ci;
            if (overlap) {
              for (let ci = 0; ci < Ci; ci++) dxv[dst + ci] += pv[src + ci];
            } else {
              for (let ci = 0; ci < Ci; ci++) dxv[dst + ci] = pv[src + ci];
            }
          }
        }
      }
    }
  }
  wasmFree(backend, p);
  return dx;
}

export const conv2dBackpropInputConfigs = kernelConfigs(tf.Conv2DBackpropInput, ['wasm'], conv2dBackpropInputWasm);
