/**
 * `openModel` in Node: paths on disk as well as URLs and bytes. A model.json (or a folder holding
 * one) → the TF.js engines; an .onnx file or ONNX bytes → the ONNX engine on `onnxruntime-node`
 * when it is installed (an optional peer dependency), else on `onnxruntime-web`'s wasm build,
 * which runs in Node too and installs from the npm registry alone.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { ModelAdapter } from './contract.js';
import type { OrtRuntime } from './onnx/adapter.js';
import {
  looksLikeJson,
  openArtifacts,
  openBytes,
  openModelSource as openBrowserSource,
  type ModelBytes,
  type OpenedModel,
  type OpenOptions,
} from './open.js';
import { readModelArtifacts } from './tfjs/load-node.js';

/** Which ONNX Runtime runs .onnx models in Node: the native one when installed ('auto'), or one named. */
export type NodeOrtChoice = 'auto' | 'onnxruntime-node' | 'onnxruntime-web';

export interface NodeOpenOptions extends OpenOptions {
  /** Used when `ort` is not given. Default 'auto': onnxruntime-node if installed, else onnxruntime-web (wasm). */
  runtime?: NodeOrtChoice;
}

/** A path on disk, a URL (http:, https:, file:), the model bytes, or TF.js model artifacts. */
export type NodeModelSource = string | URL | ModelBytes | tf.io.ModelArtifacts;

/** Opens a model and returns its adapter, the engine chosen from the source (see the module comment). */
export async function openModel(source: NodeModelSource, options: NodeOpenOptions = {}): Promise<ModelAdapter> {
  return (await openModelSource(source, options)).adapter;
}

/** `openModel`, also saying which engine runs the model and what its metadata holds. */
export async function openModelSource(source: NodeModelSource, options: NodeOpenOptions = {}): Promise<OpenedModel> {
  if (source instanceof URL && source.protocol === 'file:') return openPath(fileURLToPath(source), options);
  if (typeof source === 'string' && /^file:/i.test(source)) return openPath(fileURLToPath(source), options);
  if (typeof source === 'string' && !/^[a-z][a-z0-9+.-]+:\/\//i.test(source)) return openPath(source, options);
  if (typeof source === 'string' || source instanceof URL || source instanceof Uint8Array || source instanceof ArrayBuffer) {
    return options.ort ? openBrowserSource(source, options) : withNodeRuntime(options, (opts) => openBrowserSource(source, opts));
  }
  return openArtifacts(source, options);
}

/** A model.json, a folder holding one, or an .onnx file. */
async function openPath(path: string, options: NodeOpenOptions): Promise<OpenedModel> {
  let file = path;
  if ((await stat(path).catch(() => null))?.isDirectory()) file = join(path, 'model.json');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch {
    throw new SegGradCamError(`model file not found: ${file}`, 'file');
  }
  if (looksLikeJson(bytes) || /\.json$/i.test(file)) return openArtifacts(await readModelArtifacts(file), options);
  if (options.ort) return named(file, () => openBytes(bytes, file, options));
  return named(file, () => withNodeRuntime(options, (opts) => openBytes(bytes, file, opts)));
}

/** Runs `open` with the Node runtime of the options' choice, and names that engine. */
async function withNodeRuntime(options: NodeOpenOptions, open: (opts: OpenOptions) => Promise<OpenedModel>): Promise<OpenedModel> {
  let runtime: { ort: OrtRuntime; engine: string } | undefined;
  const opts: OpenOptions = {
    ...options,
    ort: async () => {
      runtime = await nodeOrtRuntime(options.runtime);
      return runtime.ort;
    },
  };
  const opened = await open(opts);
  return runtime ? { ...opened, engine: runtime.engine } : opened;
}

/** ONNX errors name the file they are about. */
async function named(file: string, open: () => Promise<OpenedModel>): Promise<OpenedModel> {
  try {
    return await open();
  } catch (err) {
    if (err instanceof SegGradCamError && !err.message.includes(file)) throw new SegGradCamError(`${file}: ${err.message}`, err.code);
    throw err;
  }
}

/**
 * The ONNX Runtime module for Node, imported on first use: onnxruntime-node when installed (and
 * 'auto' or asked for), else onnxruntime-web's wasm build. Asking for onnxruntime-node when it is
 * absent is a typed error saying how to install it.
 */
export async function nodeOrtRuntime(choice: NodeOrtChoice = 'auto'): Promise<{ ort: OrtRuntime; engine: string }> {
  if (choice !== 'onnxruntime-web') {
    try {
      const engine = 'onnxruntime-node (cpu)';
      return { ort: { ...((await import('onnxruntime-node')) as unknown as OrtRuntime), name: engine }, engine };
    } catch (err) {
      const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && /onnxruntime-node/.test(String(err));
      if (!missing) throw new SegGradCamError(`onnxruntime-node is installed but cannot start: ${firstLine(err)}`, 'model');
      if (choice === 'onnxruntime-node') {
        throw new SegGradCamError(
          'install onnxruntime-node to run .onnx models on the native runtime (npm install onnxruntime-node; offline: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node)',
          'model',
        );
      }
    }
  }
  const ort = (await import('onnxruntime-web')) as unknown as OrtRuntime & { env: { logLevel?: string } };
  ort.env.logLevel = 'error';
  const engine = 'onnxruntime-web (wasm)';
  return { ort: { ...ort, name: engine }, engine };
}

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];
