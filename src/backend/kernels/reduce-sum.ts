/**
 * Sum and Mean of float32 tensors for wasm, accumulated in float64 in JS (like the cpu backend).
 *
 * The stock wasm kernels transpose the reduced axes innermost and add them one by one into a
 * float32 accumulator, so the relative error grows with the reduction size: sum(yWeighted) of a
 * 64x64 batch-8 training step (360 k elements, 4.1 k of them 0.4 or 2.5) came out 2.8e-4 too
 * large, and since the cross-entropy is divided by it, every weight gradient was scaled by
 * 1 - 2.8e-4 relative to cpu. A float64 accumulator makes such sums exact to float32 rounding and
 * needs no transpose: all Sum/Mean calls of a training step took 24 ms vs 27.5 ms stock.
 * Innermost reductions of fewer than 256 elements (softmax over classes), shapes whose reduced
 * axes are not one block after merging adjacent axes (e.g. axes [0, 2] of a rank-3 tensor with no
 * size-1 dims), other dtypes and empty tensors go to the stock kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { callKernel, heapF32, type KernelArgs, kernelConfigs, type WasmBackendLike } from '../util.js';

/**
 * [outer, reduce, inner] when the reduced axes of `shape` form one block once size-1 axes are
 * dropped (out[o, i] = Σ_r x[o, r, i]); null otherwise.
 */
export function reductionBlocks(shape: readonly number[], axes: readonly number[]): [number, number, number] | null {
  const reduced = new Set(axes);
  let outer = 1;
  let reduce = 1;
  let inner = 1;
  let state: 'outer' | 'reduce' | 'inner' = 'outer';
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (n === 1) continue;
    if (reduced.has(d)) {
      if (state === 'inner') return null;
      state = 'reduce';
      reduce *= n;
    } else if (state === 'outer') {
      outer *= n;
    } else {
      state = 'inner';
      inner *= n;
    }
  }
  return [outer, reduce, inner];
}

/** out[o·inner + i] = Σ_r x[(o·reduce + r)·inner + i] / divisor, accumulated in float64. */
export function reduceSumF64(x: Float32Array, outer: number, reduce: number, inner: number, divisor: number, out: Float32Array): void {
  if (inner === 1) sumRows(x, outer, reduce, divisor, out);
  else for (let o = 0; o < outer; o++) sumColumns(x, o * reduce * inner, reduce, inner, divisor, out, o * inner);
}

/** Contiguous rows: four independent sums per row (~2x faster in V8 than one dependent chain). */
function sumRows(x: Float32Array, rows: number, len: number, divisor: number, out: Float32Array): void {
  for (let o = 0; o < rows; o++) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let k = o * len;
    const end = k + len;
    for (const end4 = end - 3; k < end4; k += 4) {
      s0 += x[k];
      s1 += x[k + 1];
      s2 += x[k + 2];
      s3 += x[k + 3];
    }
    for (; k < end; k++) s0 += x[k];
    out[o] = (s0 + s1 + (s2 + s3)) / divisor;
  }
}

/**
 * Column sums of the [reduce, inner] block at `base`: four columns per strided pass, sums in
 * registers (fastest in V8; a Float64Array accumulator row was ~3x slower).
 */
function sumColumns(
  x: Float32Array,
  base: number,
  reduce: number,
  inner: number,
  divisor: number,
  out: Float32Array,
  outBase: number,
): void {
  const end = base + reduce * inner;
  let i = 0;
  for (; i + 4 <= inner; i += 4) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = base + i; k < end; k += inner) {
      s0 += x[k];
      s1 += x[k + 1];
      s2 += x[k + 2];
      s3 += x[k + 3];
    }
    out[outBase + i] = s0 / divisor;
    out[outBase + i + 1] = s1 / divisor;
    out[outBase + i + 2] = s2 / divisor;
    out[outBase + i + 3] = s3 / divisor;
  }
  for (; i < inner; i++) {
    let s = 0;
    for (let k = base + i; k < end; k += inner) s += x[k];
    out[outBase + i] = s / divisor;
  }
}

/** Innermost reductions shorter than this stay on the stock kernels. */
const SMALL_INNERMOST = 256;

function reduceKernel(kernelName: typeof tf.Sum | typeof tf.Mean) {
  return ({ inputs, attrs, backend }: KernelArgs<WasmBackendLike>): tf.TensorInfo => {
    const { x } = inputs;
    const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
    const xSize = x.shape.reduce((a, b) => a * b, 1);
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const blocks = x.dtype === 'float32' && xSize > 0 ? reductionBlocks(x.shape, axes) : null;
    // Short innermost reductions (e.g. softmax over classes): float32 is accurate enough there
    // and the stock kernel is faster.
    if (!blocks || (blocks[2] === 1 && blocks[1] < SMALL_INNERMOST)) return callKernel(kernelName, 'wasm', backend, inputs, attrs);
    const [outer, reduce, inner] = blocks;
    let outShape = tf.backend_util.computeOutAndReduceShapes(x.shape, axes)[0];
    if (keepDims) outShape = tf.backend_util.expandShapeToKeepDim(outShape, axes);
    const out = backend.makeOutput(outShape, 'float32');
    // Views after allocating the output (the heap may have grown).
    reduceSumF64(heapF32(backend, x), outer, reduce, inner, kernelName === tf.Mean ? reduce : 1, heapF32(backend, out));
    return out;
  };
}

export const reduceSumConfigs = [
  ...kernelConfigs(tf.Sum, ['wasm'], reduceKernel(tf.Sum)),
  ...kernelConfigs(tf.Mean, ['wasm'], reduceKernel(tf.Mean)),
];
