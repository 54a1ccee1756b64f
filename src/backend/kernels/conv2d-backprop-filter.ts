/**
 * Conv2DBackpropFilter for wasm (the stock backend has none).
 *
 *   dW[kh,kw,ci,co] = Σ_{n,oh,ow} xpad[n, oh·sh + kh, ow·sw + kw, ci] · dy[n,oh,ow,co]
 *
 * Fast path: this is one ordinary convolution if the batch axis plays the role
 * of channels: input X'[ci, r, c, n] = xpad[n, r, c, ci] (Cin is the batch),
 * filter F'[oh, ow, n, co] = dy[n, oh, ow, co], 'valid' padding, stride 1,
 * dilation = the forward stride. Its output [Cin, KH, KW, Cout] is dW with the
 * first axes swapped. XNNPACK runs it as one big GEMM. The re-layouts are done
 * in JS on the heap (wasm's Transpose is slow).
 *
 * Fallback (NCHW or anything unusual): a plain JS loop.
 */
import * as tf from '@tensorflow/tfjs';
import {
  callKernel,
  convInfo,
  heapF32,
  type KernelArgs,
  kernelConfigs,
  wasmAlloc,
  type WasmBackendLike,
  wasmFree,
  wasmFromArray,
} from '../util.js';

type ConvInfo = tf.backend_util.Conv2DInfo;

/** Reference implementation on NHWC arrays; returns dW [KH, KW, Cin, Cout]. */
export function conv2dBackpropFilterJs(x: Float32Array, dy: Float32Array, info: ConvInfo): Float32Array {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: Ci,
    outHeight: oH,
    outWidth: oW,
    outChannels: Co,
    filterHeight: KH,
    filterWidth: KW,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const dw = new Float64Array(KH * KW * Ci * Co);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++) {
        const dyOff = ((n * oH + oh) * oW + ow) * Co;
        for (let kh = 0; kh < KH; kh++) {
          const h = oh * sh + kh - pt;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const w = ow * sw + kw - pl;
            if (w < 0 || w >= W) continue;
            const xOff = ((n * H + h) * W + w) * Ci;
            const fOff = (kh * KW + kw) * Ci * Co;
            for (let ci = 0; ci < Ci; ci++) {
              const xv = x[xOff + ci];
              if (xv === 0) continue;
              const o = fOff + ci * Co;
              for (let co = 0; co < Co; co++) dw[o + co] += xv * dy[dyOff + co];
            }
          }
        }
      }
    }
  }
  return Float32Array.from(dw);
}

/** NCHW -> NHWC copy. */
export function nchwToNhwc(v: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out[(b * h * w + i) * c + ch] = v[(b * c + ch) * h * w + i];
  return out;
}

export function conv2dBackpropFilterWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { x, dy } = inputs;
  const info = convInfo(x.shape, (attrs as unknown as tf.Conv2DBackpropFilterAttrs).filterShape, attrs);
  const filterShape = [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels];
  if (info.dataFormat !== 'channelsLast') {
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: Ci, outHeight: oH, outWidth: oW, outChannels: Co } = info;
    const xv = nchwToNhwc(heapF32(backend, x), N, Ci, H, W);
    const dyv = nchwToNhwc(heapF32(backend, dy), N, Co, oH, oW);
    return wasmFromArray(backend, filterShape, conv2dBackpropFilterJs(xv, dyv, info));
  }
  return conv2dBackpropFilterViaConv(backend, x, dy, info);
}

function conv2dBackpropFilterViaConv(backend: WasmBackendLike, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo): tf.TensorInfo {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: Ci,
    outHeight: oH,
    outWidth: oW,
    outChannels: Co,
    filterHeight: KH,
    filterWidth: KW,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Rows/cols of the padded input that the forward conv actually reads.
  const Hp = KH + (oH - 1) * sh;
  const Wp = KW + (oW - 1) * sw;

  const xT = wasmAlloc(backend, [Ci, Hp, Wp, N]);
  const fT = wasmAlloc(backend, [oH, oW, N, Co]);
  {
    const xs = heapF32(backend, x);
    const xd = heapF32(backend, xT);
    xd.fill(0);
    const r0 = Math.max(0, pt);
    const r1 = Math.min(Hp, H + pt);
    const c0 = Math.max(0, pl);
    const c1 = Math.min(Wp, W + pl);
    const bStride = H * W * Ci;
    // Destination-ordered (sequential writes, strided reads).
    for (let ci = 0; ci < Ci; ci++) {
      for (let r = r0; r < r1; r++) {
        const h = r - pt;
        for (let c = c0; c < c1; c++) {
          let src = (h * W + (c - pl)) * Ci + ci;
          const dst = ((ci * Hp + r) * Wp + c) * N;
          for (let n = 0; n < N; n++, src += bStride) xd[dst + n] = xs[src];
        }
      }
    }
    const ds = heapF32(backend, dy);
    const fd = heapF32(backend, fT);
    const P = oH * oW;
    for (let p = 0; p < P; p++) {
      for (let n = 0; n < N; n++) {
        const src = (n * P + p) * Co;
        const dst = (p * N + n) * Co;
        for (let co = 0; co < Co; co++) fd[dst + co] = ds[src + co];
      }
    }
  }
  const y = callKernel(
    'Conv2D',
    'wasm',
    backend,
    { x: xT, filter: fT },
    {
      strides: [1, 1],
      pad: 'valid',
      dataFormat: 'NHWC',
      dilations: [sh, sw],
      dimRoundingMode: undefined,
    },
  );
  wasmFree(backend, xT, fT);
  // y: [Ci, KH, KW, Co] -> dW: [KH, KW, Ci, Co]
  const dW = wasmAlloc(backend, [KH, KW, Ci, Co]);
  const ys = heapF32(backend, y);
  const wd = heapF32(backend, dW);
  for (let ci = 0; ci < Ci; ci++) {
    for (let k = 0; k < KH * KW; k++) {
      const src = (ci * KH * KW + k) * Co;
      const dst = (k * Ci + ci) * Co;
      for (let co = 0; co < Co; co++) wd[dst + co] = ys[src + co];
    }
  }
  wasmFree(backend, y);
  return dW;
}

export const conv2dBackpropFilterConfigs = kernelConfigs(tf.Conv2DBackpropFilter, ['wasm'], conv2dBackpropFilterWasm);
