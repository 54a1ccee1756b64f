/**
 * Small helpers shared by our kernels: typed-array access to tensor data on the
 * wasm heap and in the cpu backend, temporaries, JS-computed outputs, conv and
 * pool geometry from kernel attrs, kernel configs, and calls into stock kernels.
 *
 * Nothing here imports Node modules: it is loaded by the browser bundle too.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type DataId = TensorInfo['dataId'];
type Shape4 = [number, number, number, number];

/** The parts of tfjs-backend-wasm's BackendWasm that our kernels use. */
export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: DataId): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU that our kernels use. */
export interface CpuBackendLike {
  data: { get(dataId: DataId): { values: tf.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): TensorInfo;
}

export type KernelArgs<B> = {
  inputs: Record<string, TensorInfo>;
  attrs: Record<string, unknown>;
  backend: B;
};

/** The configs registering one kernel function under `kernelName` for each of `backendNames`. */
export function kernelConfigs(
  kernelName: string,
  backendNames: string[],
  kernelFunc: (args: KernelArgs<never>) => TensorInfo | TensorInfo[],
): tf.KernelConfig[] {
  return backendNames.map((backendName) => ({
    kernelName,
    backendName,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  }));
}

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A Float32Array view of a wasm tensor. Invalidated by any later heap allocation
 * (the heap may grow and detach its buffer): take views after allocating.
 */
export function heapF32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  const { memoryOffset } = backend.dataIdMap.get(t.dataId);
  return new Float32Array(backend.wasm.HEAPU8.buffer, memoryOffset, size(t.shape));
}

export type HeapArray = Float32Array | Int32Array | Uint8Array;

/** A view of a wasm tensor typed by its dtype (bool as bytes); same caveat as heapF32. */
export function heapView(backend: WasmBackendLike, t: TensorInfo): HeapArray {
  const { memoryOffset } = backend.dataIdMap.get(t.dataId);
  const buf = backend.wasm.HEAPU8.buffer;
  const n = size(t.shape);
  switch (t.dtype) {
    case 'float32':
      return new Float32Array(buf, memoryOffset, n);
    case 'int32':
      return new Int32Array(buf, memoryOffset, n);
    default:
      return new Uint8Array(buf, memoryOffset, n);
  }
}

/** Allocates a float32 tensor on the wasm heap (contents undefined). */
export function wasmAlloc(backend: WasmBackendLike, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

export function wasmFree(backend: WasmBackendLike, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/** Allocates a wasm tensor and copies `values` into it. */
export function wasmFromArray(backend: WasmBackendLike, shape: number[], values: Float32Array): TensorInfo {
  const t = wasmAlloc(backend, shape);
  heapF32(backend, t).set(values);
  return t;
}

export function cpuValues(backend: CpuBackendLike, t: TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  return Float32Array.from(v as ArrayLike<number>);
}

export function isWasm(backend: unknown): backend is WasmBackendLike {
  return typeof backend === 'object' && backend !== null && 'wasm' in backend && 'dataIdMap' in backend;
}

/** Builds a float32 output tensor on either backend from values computed in JS. */
export function makeOutputF32(backend: unknown, shape: number[], values: Float32Array): TensorInfo {
  if (isWasm(backend)) return wasmFromArray(backend, shape, values);
  return (backend as CpuBackendLike).makeTensorInfo(shape, 'float32', values);
}

/**
 * A float32 output of `shape` computed in JS on either backend: `body` gets the
 * output, zeroed, and the float32 values of `inputs`. On wasm these are views of
 * the heap taken after allocating the output, so nothing is copied in or out.
 */
export function jsOutputF32(
  backend: unknown,
  shape: number[],
  inputs: TensorInfo[],
  body: (out: Float32Array, ...ins: Float32Array[]) => void,
): TensorInfo {
  if (isWasm(backend)) {
    const out = wasmAlloc(backend, shape);
    const o = heapF32(backend, out);
    o.fill(0);
    body(o, ...inputs.map((t) => heapF32(backend, t)));
    return out;
  }
  const cpu = backend as CpuBackendLike;
  const o = new Float32Array(size(shape));
  body(o, ...inputs.map((t) => cpuValues(cpu, t)));
  return cpu.makeTensorInfo(shape, 'float32', o);
}

/**
 * Conv2DInfo from the attrs of a (depthwise) convolution backprop kernel. The
 * Conv2D ones carry no dilations (1), the depthwise ones no data format (NHWC).
 */
export function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise = false,
): tf.backend_util.Conv2DInfo {
  const {
    strides,
    pad,
    dimRoundingMode,
    dilations = 1,
    dataFormat = 'NHWC',
  } = attrs as unknown as tf.Conv2DBackpropFilterAttrs & Partial<tf.DepthwiseConv2dNativeBackpropFilterAttrs>;
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    depthwise,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
}

/** Pool2DInfo from the attrs of a pooling gradient kernel (AvgPoolGrad has no rounding mode). */
export function poolInfo(inputShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  return tf.backend_util.computePool2DInfo(inputShape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
}

/**
 * The stock kernels as registered by the backend packages, captured before we
 * override any of them. Calling a stock wasm kernel needs its setupFunc to have
 * run on the current backend instance (it cwraps the wasm export); we make sure.
 */
// Kept on globalThis so that two copies of this module (e.g. src and dist in one
// process) share it: a second copy must never mistake our kernels for stock ones.
const G = globalThis as unknown as Record<symbol, Map<string, tf.KernelConfig> | undefined>;
const STOCK = Symbol.for('seg-grad-cam.backend.stockKernels');
const stock: Map<string, tf.KernelConfig> = G[STOCK] ?? (G[STOCK] = new Map());
const setUpOn = new WeakMap<object, Set<string>>();

const stockKey = (kernelName: string, backendName: string) => `${backendName}_${kernelName}`;

export function rememberStock(kernelName: string, backendName: string): void {
  const key = stockKey(kernelName, backendName);
  if (stock.has(key)) return;
  const cfg = tf.getKernel(kernelName, backendName);
  if (cfg) stock.set(key, cfg);
}

/** Runs the setupFunc of a captured stock kernel once per backend instance. */
function stockSetup(kernelName: string, cfg: tf.KernelConfig, backend: object): void {
  if (!cfg.setupFunc) return;
  let done = setUpOn.get(backend);
  if (!done) {
    done = new Set();
    setUpOn.set(backend, done);
  }
  if (done.has(kernelName)) return;
  cfg.setupFunc(backend as tf.KernelBackend);
  done.add(kernelName);
}

/** Runs a kernel implementation directly (no engine, no tape): TensorInfo in, TensorInfo out. */
export function callKernel(
  kernelName: string,
  backendName: string,
  backend: object,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown>,
): TensorInfo {
  // Prefer the stock implementation when one was captured (our override may be
  // the registered one); otherwise whatever is registered now.
  let cfg = stock.get(stockKey(kernelName, backendName));
  if (cfg) stockSetup(kernelName, cfg, backend);
  else cfg = tf.getKernel(kernelName, backendName);
  if (!cfg) throw new Error(`kernel ${kernelName} is not registered for ${backendName}`);
  const out = cfg.kernelFunc({
    inputs: inputs as tf.NamedTensorInfoMap,
    attrs: attrs as tf.NamedAttrMap,
    backend: backend as tf.KernelBackend,
  });
  return Array.isArray(out) ? out[0] : out;
}
