/**
 * Slice, SplitV and Concat for wasm with plain loops on heap views.
 *
 * The stock kernels copy row by row with `subarray()` + `set()` (and Slice first
 * copies its whole input out of the heap). With NHWC tensors of few channels —
 * the concat of a U-Net skip and its gradient (a SplitV) — rows are 8–32 values
 * long and the per-row object creation dominated: ~10–17 ms for one
 * [8,64,64,16] split or concat.
 */
import * as tf from '@tensorflow/tfjs';
import { callKernel, type HeapArray, heapView, type KernelArgs, kernelConfigs, type WasmBackendLike } from '../util.js';

/** Copies `len` values; `set` for long runs, a loop for short ones. */
function copy(src: HeapArray, s: number, dst: HeapArray, d: number, len: number): void {
  if (len >= 128) dst.set(src.subarray(s, s + len), d);
  else for (let i = 0; i < len; i++) dst[d + i] = src[s + i];
}

/** out = x[begin : begin+size] (row-major, any rank). */
export function sliceInto(x: HeapArray, shape: number[], begin: number[], size: number[], out: HeapArray): void {
  const r = shape.length;
  // Merge trailing axes that are taken whole into one contiguous run.
  let inner = 1;
  let k = r;
  while (k > 0 && begin[k - 1] === 0 && size[k - 1] === shape[k - 1]) inner *= shape[--k];
  if (k === 0) {
    copy(x, 0, out, 0, inner);
    return;
  }
  // Axis k-1 is partial: runs of size[k-1]*inner contiguous values.
  const run = size[k - 1] * inner;
  const strides = new Array<number>(k);
  let s = inner;
  for (let i = k - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  const outer = size.slice(0, k - 1);
  const idx = new Array<number>(k - 1).fill(0);
  const total = outer.reduce((a, b) => a * b, 1);
  let o = 0;
  for (let t = 0; t < total; t++) {
    let off = begin[k - 1] * strides[k - 1];
    for (let i = 0; i < k - 1; i++) off += (begin[i] + idx[i]) * strides[i];
    copy(x, off, out, o, run);
    o += run;
    for (let i = k - 2; i >= 0; i--) {
      if (++idx[i] < outer[i]) break;
      idx[i] = 0;
    }
  }
}

function numeric(t: tf.TensorInfo): boolean {
  return t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool';
}

export function sliceWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const { x } = inputs;
  if (!numeric(x)) return callKernel(tf.Slice, 'wasm', backend, inputs, attrs);
  const { begin, size } = attrs as unknown as tf.SliceAttrs;
  const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
  const out = backend.makeOutput(s, x.dtype);
  if (s.some((d) => d === 0)) return out;
  sliceInto(heapView(backend, x), x.shape, b, s, heapView(backend, out));
  return out;
}

export function splitVWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo[] {
  const { x } = inputs;
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax) as number[];
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((n) => {
    const size = x.shape.slice();
    size[ax] = n;
    const out = sliceWasm({ inputs: { x }, attrs: { begin: begin.slice(), size }, backend });
    begin[ax] += n;
    return out;
  });
}

export function concatWasm({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo {
  const list = Object.values(inputs);
  if (list.length === 0 || !list.every(numeric)) return callKernel(tf.Concat, 'wasm', backend, inputs, attrs);
  const ax = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, list[0].shape)[0];
  tf.backend_util.assertParamsConsistent(
    list.map((t) => t.shape),
    ax,
  );
  const outShape = tf.backend_util.computeOutShape(
    list.map((t) => t.shape),
    ax,
  );
  const out = backend.makeOutput(outShape, list[0].dtype);
  const outer = list[0].shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inners = list.map((t) => t.shape.slice(ax).reduce((a, b) => a * b, 1));
  const rowOut = inners.reduce((a, b) => a + b, 0);
  if (outer * rowOut === 0) return out;
  const o = heapView(backend, out);
  const views = list.map((t) => heapView(backend, t));
  let col = 0;
  for (let i = 0; i < views.length; i++) {
    const v = views[i];
    const n = inners[i];
    if (n === 0) continue;
    for (let b = 0; b < outer; b++) copy(v, b * n, o, b * rowOut + col, n);
    col += n;
  }
  return out;
}

export const sliceConcatConfigs = [
  ...kernelConfigs(tf.Slice, ['wasm'], sliceWasm),
  ...kernelConfigs(tf.SplitV, ['wasm'], splitVWasm),
  ...kernelConfigs(tf.Concat, ['wasm'], concatWasm),
];
