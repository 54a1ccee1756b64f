/**
 * Small helpers shared by our kernels: typed-array access to tensor data on the
 * wasm heap and in the cpu backend, temporaries, and calls into stock kernels.
 *
 * Nothing here imports Node modules: it is loaded by the browser bundle too.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type DataId = TensorInfo['dataId'];

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

/** Float32 values of a tensor on either backend (a copy for wasm, a view for cpu). */
export function readF32(backend: unknown, t: TensorInfo): Float32Array {
  if (isWasm(backend)) return heapF32(backend, t).slice();
  return cpuValues(backend as CpuBackendLike, t);
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

export function rememberStock(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  const key = `${backendName}_${kernelName}`;
  if (!stock.has(key)) {
    const cfg = tf.getKernel(kernelName, backendName);
    if (cfg) stock.set(key, cfg);
  }
  return stock.get(key);
}

export function hasStock(kernelName: string, backendName: string): boolean {
  return stock.has(`${backendName}_${kernelName}`);
}

export function stockSetup(kernelName: string, backendName: string, backend: object): void {
  const cfg = stock.get(`${backendName}_${kernelName}`);
  if (!cfg?.setupFunc) return;
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
  const cfg = stock.get(`${backendName}_${kernelName}`) ?? tf.getKernel(kernelName, backendName);
  if (!cfg) throw new Error(`kernel ${kernelName} is not registered for ${backendName}`);
  if (stock.has(`${backendName}_${kernelName}`)) stockSetup(kernelName, backendName, backend);
  const out = cfg.kernelFunc({
    inputs: inputs as tf.NamedTensorInfoMap,
    attrs: attrs as tf.NamedAttrMap,
    backend: backend as tf.KernelBackend,
  });
  return Array.isArray(out) ? out[0] : out;
}
