/**
 * Conv3DBackpropInputV2 for wasm (the input gradient of conv3d, and the FORWARD of
 * conv3dTranspose). The stock wasm kernel of tfjs 4.22 returns wrong values (measured against
 * the cpu kernel and PyTorch: off by the output's full magnitude, stride 1 and 2 alike), so
 * Conv3D models would get wrong gradients and Conv3DTranspose layers wrong outputs on wasm. This
 * is the definition as a scatter-add on the heap: dx[b, od·s − p + k, ci] += dy[b, od, co] ·
 * W[k, ci, co]. Channels last (NDHWC) only, as tfjs's 3-D ops are.
 */
import * as tf from '@tensorflow/tfjs';
import { jsOutputF32, type KernelArgs, kernelConfigs, type WasmBackendLike } from '../util.js';

export function conv3dBackpropInputInto(dy: Float32Array, w: Float32Array, dx: Float32Array, info: tf.backend_util.Conv3DInfo): void {
  const { batchSize: B, inDepth: D, inHeight: H, inWidth: W, inChannels: Ci, outDepth: oD, outHeight: oH, outWidth: oW } = info;
  const { outChannels: Co, strideDepth: sd, strideHeight: sh, strideWidth: sw, filterDepth: KD, filterHeight: KH, filterWidth: KW } = info;
  const { front: pf, top: pt, left: pl } = info.padInfo;
  let o = 0;
  for (let b = 0; b < B; b++)
    for (let od = 0; od < oD; od++)
      for (let oh = 0; oh < oH; oh++)
        for (let ow = 0; ow < oW; ow++, o += Co)
          for (let kd = 0; kd < KD; kd++) {
            const id = od * sd - pf + kd;
            if (id < 0 || id >= D) continue;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - pt + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pl + kw;
                if (iw < 0 || iw >= W) continue;
                const x0 = (((b * D + id) * H + ih) * W + iw) * Ci;
                const w0 = ((kd * KH + kh) * KW + kw) * Ci * Co;
                for (let ci = 0; ci < Ci; ci++) {
                  let s = 0;
                  const wr = w0 + ci * Co;
                  for (let co = 0; co < Co; co++) s += dy[o + co] * w[wr + co];
                  dx[x0 + ci] += s;
                }
              }
            }
          }
}

function conv3dBackpropInputWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { dy, filter } = inputs;
  const { pad, strides, inputShape } = attrs as unknown as tf.Conv3DBackpropInputV2Attrs;
  const info = tf.backend_util.computeConv3DInfo(
    inputShape as [number, number, number, number, number],
    filter.shape as [number, number, number, number, number],
    strides,
    1,
    pad,
  );
  return jsOutputF32(backend, info.inShape, [dy, filter], (dx, g, w) => conv3dBackpropInputInto(g, w, dx, info));
}

export const conv3dBackpropInputConfigs = kernelConfigs('Conv3DBackpropInputV2', ['wasm'], conv3dBackpropInputWasm);
