/**
 * Node-only part of the ONNX support: files from disk and the onnxruntime-node runtime. The
 * rest of src/engine/onnx is browser-safe (give it `onnxruntime-web` instead).
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { SegGradCamError } from '../../errors.js';
import { Explainer, type ExplainerOptions } from '../../explain.js';
import { OnnxModelAdapter, type OnnxAdapterOptions, type OrtRuntime } from './adapter.js';

/** onnxruntime-node as the adapter's runtime. */
export const nodeRuntime: OrtRuntime = { ...(ort as unknown as OrtRuntime), name: 'onnxruntime-node (cpu)' };

/** Reads a .onnx file and prepares it for ONNX Runtime in Node (one shape probe run). */
export async function loadOnnxModel(path: string, options: OnnxAdapterOptions = {}): Promise<OnnxModelAdapter> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new SegGradCamError(`cannot read ONNX model '${path}': ${(err as Error).message}`, 'file');
  }
  return OnnxModelAdapter.create(bytes, nodeRuntime, options);
}

/** Loads a .onnx file straight into an Explainer. */
export async function loadOnnxExplainer(path: string, options: OnnxAdapterOptions & ExplainerOptions = {}): Promise<Explainer> {
  return new Explainer(await loadOnnxModel(path, options), options);
}

export * from './index.js';
