/**
 * UnsortedSegmentSum for wasm (missing in tfjs-backend-wasm 4.22). It is the
 * gradient of tf.gather — e.g. picking a class channel of the logits with
 * tf.gather(logits, c, 3) — which therefore failed on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { heapF32, heapView, type KernelArgs, kernelConfigs, size, wasmAlloc, type WasmBackendLike } from '../util.js';

export function unsortedSegmentSumWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum (wasm): dtype ${x.dtype} not supported`);
  const r = segmentIds.shape.length;
  const rows = size(segmentIds.shape);
  const innerShape = x.shape.slice(r);
  const inner = size(innerShape);
  const out = wasmAlloc(backend, [numSegments, ...innerShape]);
  const ids = heapView(backend, segmentIds);
  const xv = heapF32(backend, x);
  const o = heapF32(backend, out);
  o.fill(0);
  for (let i = 0; i < rows; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xv[src + j];
  }
  return out;
}

export const unsortedSegmentSumConfigs = kernelConfigs(tf.UnsortedSegmentSum, ['wasm'], unsortedSegmentSumWasm);
