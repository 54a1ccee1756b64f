/**
 * Node helpers for the ONNX engine: .onnx files from disk on the Node runtime (onnxruntime-node
 * when installed, else onnxruntime-web's wasm build — see ../open-node.ts). The rest of
 * src/engine/onnx is browser-safe (it is given the runtime module).
 */
import { SegGradCamError } from '../../errors.js';
import { Explainer, type ExplainerOptions } from '../../explain.js';
import { nodeOrtRuntime, openModelSource, type NodeOpenOptions } from '../open-node.js';
import type { OnnxAdapterOptions, OnnxModelAdapter, OrtRuntime } from './adapter.js';

/** The runtime .onnx models get in Node by default (onnxruntime-node when installed), loaded when this module is. */
export const nodeRuntime: OrtRuntime = (await nodeOrtRuntime()).ort;

/** Reads a .onnx file and prepares it for ONNX Runtime in Node (one shape probe run). */
export async function loadOnnxModel(path: string, options: OnnxAdapterOptions & NodeOpenOptions = {}): Promise<OnnxModelAdapter> {
  const { adapter } = await openModelSource(path, options);
  if (adapter.kind !== 'onnx') {
    adapter.dispose();
    throw new SegGradCamError(`${path} is not an ONNX model`, 'model');
  }
  return adapter as OnnxModelAdapter;
}

/** Loads a .onnx file straight into an Explainer. */
export async function loadOnnxExplainer(
  path: string,
  options: OnnxAdapterOptions & NodeOpenOptions & ExplainerOptions = {},
): Promise<Explainer> {
  return new Explainer(await loadOnnxModel(path, options), options);
}

export * from './index.js';
