/**
 * ONNX models in the worker: onnxruntime-web (wasm execution provider) runs the model and the
 * library's compiled gradient graphs (src/engine/onnx). Both are imported only when an .onnx model is
 * opened, so pages that never open one never download them.
 */
import { SegGradCamError } from '../../src/errors.js';
import type { OnnxModelAdapter, OrtRuntime } from '../../src/engine/onnx/adapter.js';

let runtime: Promise<OrtRuntime> | null = null;

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/** ONNX Runtime's intra-op threads: the cores (at most 4) in a cross-origin-isolated page, else 1. */
export function ortThreads(): number {
  if (!(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 1));
}

/**
 * onnxruntime-web, configured once: its .wasm/.mjs from `wasmBase` (our own build, never a CDN),
 * on every core up to 4 when the page is cross-origin isolated (our server and Vite send the
 * headers; threads need SharedArrayBuffer), else one thread,
 * no proxy worker (this already is a worker).
 */
export function ortWeb(wasmBase: string): Promise<OrtRuntime> {
  if (!runtime) {
    runtime = (async () => {
      const ort = await import('onnxruntime-web/wasm');
      ort.env.wasm.wasmPaths = wasmBase;
      ort.env.wasm.numThreads = ortThreads();
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return ort as unknown as OrtRuntime;
    })();
    // A failed import (e.g. the files could not be fetched) is tried again next time.
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}

/**
 * Loads .onnx bytes into the library's adapter (parse + one shape-probe run). Errors are
 * SegGradCamErrors that name the file: the library's own, or ONNX Runtime's first line.
 */
export async function loadOnnxAdapter(bytes: Uint8Array, name: string, wasmBase: string): Promise<OnnxModelAdapter> {
  let ort: OrtRuntime;
  let Adapter: typeof OnnxModelAdapter;
  try {
    [ort, { OnnxModelAdapter: Adapter }] = await Promise.all([ortWeb(wasmBase), import('../../src/engine/onnx/adapter.js')]);
  } catch (err) {
    throw new SegGradCamError(`cannot start ONNX Runtime: ${firstLine(err)}`, 'model');
  }
  try {
    return await Adapter.create(bytes, ort);
  } catch (err) {
    if (err instanceof SegGradCamError) throw new SegGradCamError(`${name}: ${err.message}`, err.code);
    throw new SegGradCamError(`${name}: ONNX Runtime cannot load it: ${firstLine(err)}`, 'model');
  }
}
