/**
 * DepthwiseConv2dNativeBackpropInput / ...BackpropFilter for wasm (both missing
 * from tfjs-backend-wasm 4.22; needed to differentiate MobileNet-style models
 * such as MediaPipe's selfie segmenter).
 *
 * Input gradient, stride 1, dilation 1, channel multiplier 1: a forward
 * depthwise convolution of dy with the kernel rotated 180° (XNNPACK).
 * Otherwise, and for the filter gradient: JS loops on the heap.
 */
import * as tf from '@tensorflow/tfjs';
import {
  callKernel,
  convInfo,
  heapF32,
  jsOutputF32,
  type KernelArgs,
  kernelConfigs,
  wasmAlloc,
  type WasmBackendLike,
  wasmFree,
  wasmFromArray,
} from '../util.js';
import { rotateSwap, rotatedConvPad } from './conv2d-backprop-input.js';

type ConvInfo = tf.backend_util.Conv2DInfo;

/** dx (zeroed) += depthwise transpose of dy with w [KH, KW, Ci, mult]. */
export function depthwiseBackpropInputJs(dy: Float32Array, w: Float32Array, dx: Float32Array, info: ConvInfo): void {
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
    dilationHeight: dh,
    dilationWidth: dw,
  } = info;
  const mult = Co / Ci;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++) {
        const dyOff = ((n * oH + oh) * oW + ow) * Co;
        for (let kh = 0; kh < KH; kh++) {
          const h = oh * sh + kh * dh - pt;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const x = ow * sw + kw * dw - pl;
            if (x < 0 || x >= W) continue;
            const dxOff = ((n * H + h) * W + x) * Ci;
            const wOff = (kh * KW + kw) * Co;
            if (mult === 1) {
              for (let c = 0; c < Ci; c++) dx[dxOff + c] += dy[dyOff + c] * w[wOff + c];
            } else {
              for (let c = 0; c < Ci; c++) {
                let acc = 0;
                for (let q = 0; q < mult; q++) acc += dy[dyOff + c * mult + q] * w[wOff + c * mult + q];
                dx[dxOff + c] += acc;
              }
            }
          }
        }
      }
    }
  }
}

/** Returns dW [KH, KW, Ci, mult]. */
export function depthwiseBackpropFilterJs(x: Float32Array, dy: Float32Array, info: ConvInfo): Float32Array {
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
    dilationHeight: dh,
    dilationWidth: dw,
  } = info;
  const mult = Co / Ci;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const acc = new Float64Array(KH * KW * Co);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const aOff = (kh * KW + kw) * Co;
      for (let n = 0; n < N; n++) {
        for (let oh = 0; oh < oH; oh++) {
          const h = oh * sh + kh * dh - pt;
          if (h < 0 || h >= H) continue;
          for (let ow = 0; ow < oW; ow++) {
            const xw = ow * sw + kw * dw - pl;
            if (xw < 0 || xw >= W) continue;
            const xOff = ((n * H + h) * W + xw) * Ci;
            const dyOff = ((n * oH + oh) * oW + ow) * Co;
            if (mult === 1) {
              for (let c = 0; c < Ci; c++) acc[aOff + c] += x[xOff + c] * dy[dyOff + c];
            } else {
              for (let c = 0; c < Ci; c++) {
                const xv = x[xOff + c];
                for (let q = 0; q < mult; q++) acc[aOff + c * mult + q] += xv * dy[dyOff + c * mult + q];
              }
            }
          }
        }
      }
    }
  }
  return Float32Array.from(acc);
}

export function depthwiseBackpropInputWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { dy, filter } = inputs;
  const { inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = convInfo(inputShape, filter.shape, attrs, true);
  const plain =
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.outChannels === info.inChannels;
  const pad = plain ? rotatedConvPad(info) : null;
  if (pad) {
    const { filterHeight: KH, filterWidth: KW, inChannels: C } = info;
    const wR = wasmAlloc(backend, [KH, KW, C, 1]);
    rotateSwap(heapF32(backend, filter), heapF32(backend, wR), KH, KW, C, 1);
    const dx = callKernel(
      tf.DepthwiseConv2dNative,
      'wasm',
      backend,
      { x: dy, filter: wR },
      {
        strides: [1, 1],
        dilations: [1, 1],
        pad,
        dataFormat: 'NHWC',
        dimRoundingMode: undefined,
      },
    );
    wasmFree(backend, wR);
    return dx;
  }
  return jsOutputF32(backend, inputShape.slice(), [dy, filter], (dx, g, w) => depthwiseBackpropInputJs(g, w, dx, info));
}

export function depthwiseBackpropFilterWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { x, dy } = inputs;
  const { filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = convInfo(x.shape, filterShape, attrs, true);
  return wasmFromArray(backend, filterShape.slice(), depthwiseBackpropFilterJs(heapF32(backend, x), heapF32(backend, dy), info));
}

export const depthwiseConfigs = [
  ...kernelConfigs(tf.DepthwiseConv2dNativeBackpropInput, ['wasm'], depthwiseBackpropInputWasm),
  ...kernelConfigs(tf.DepthwiseConv2dNativeBackpropFilter, ['wasm'], depthwiseBackpropFilterWasm),
];
