/**
 * One way in for every model: `openModel(source)` chooses the engine. Browser-safe (URLs and
 * bytes); paths on disk go through ./open-node.ts.
 *
 *  - a TF.js model.json (by URL, or as artifacts) → the LayersModel or GraphModel engine;
 *  - an .onnx model (by URL ending in .onnx, or bytes that parse as an ONNX ModelProto) → the
 *    ONNX engine on the ONNX Runtime module given as `ort` (default: `onnxruntime-web`, imported
 *    on first use).
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { ModelAdapter } from './contract.js';
import type { OnnxAdapterOptions, OrtRuntime } from './onnx/adapter.js';
import { adapterFromArtifacts, type LoadOptions } from './tfjs/load.js';
import { checkWeightBytes } from './tfjs/weights-check.js';

/** Model bytes: an .onnx file's content. */
export type ModelBytes = Uint8Array | ArrayBuffer;

/** A URL (string or URL object), the model's bytes, or TF.js model artifacts (model.json + weights in memory). */
export type ModelSource = string | URL | ModelBytes | tf.io.ModelArtifacts;

/** An ONNX Runtime module, or a function that imports one (called on the first ONNX model only). */
export type OrtProvider = OrtRuntime | (() => Promise<OrtRuntime>);

export interface OpenOptions extends LoadOptions, OnnxAdapterOptions {
  /**
   * The ONNX Runtime module for .onnx models: `onnxruntime-web` (browser), `onnxruntime-node`
   * (Node), or a function importing one. Default: `onnxruntime-web`, imported when first needed
   * (in Node, `openModel` from 'seg-grad-cam/node' prefers `onnxruntime-node` when installed).
   */
  ort?: OrtProvider;
  /** Loading progress (a URL's download, in [0, 1]). */
  onProgress?: (fraction: number) => void;
}

/** What the model file says about itself (TF.js model.json userDefinedMetadata). */
export interface ModelMetadata {
  classNames?: string[];
  inputRange?: [number, number];
}

/** An opened model: the engine's adapter, which engine that is, and the model's own metadata. */
export interface OpenedModel {
  adapter: ModelAdapter;
  /** The engine in words, e.g. 'tfjs layers-model', 'onnxruntime-node (cpu)', 'onnxruntime-web (wasm)'. */
  engine: string;
  metadata: ModelMetadata;
}

/** Opens a model from a URL, bytes or TF.js artifacts and returns its adapter (the engine chosen from the source). */
export async function openModel(source: ModelSource, options: OpenOptions = {}): Promise<ModelAdapter> {
  return (await openModelSource(source, options)).adapter;
}

/** `openModel`, also saying which engine runs the model and what its metadata holds. */
export async function openModelSource(source: ModelSource, options: OpenOptions = {}): Promise<OpenedModel> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return openBytes(toBytes(source), 'the model bytes', options);
  if (typeof source === 'string' || source instanceof URL) return openUrl(String(source), options);
  if (isArtifacts(source)) return openArtifacts(source, options);
  throw new SegGradCamError('openModel needs a URL, the model bytes or TF.js model artifacts', 'model');
}

/** A name or URL that names an ONNX model (a query or fragment after the name is ignored). */
export const isOnnxName = (name: string): boolean => /\.onnx$/i.test(name.split(/[?#]/)[0]);

/**
 * Whether bytes look like an ONNX ModelProto. Every exporter writes `ir_version` (field 1,
 * varint: tag byte 0x08) first; the ONNX engine then parses the whole message, so a false positive
 * ends in its "not an ONNX model" error, never in a wrong engine.
 */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x08 && bytes[1] > 0 && bytes[1] < 0x80;
}

/** Whether bytes are JSON text (a model.json): the first non-blank byte is '{'. */
export function looksLikeJson(bytes: Uint8Array): boolean {
  for (const b of bytes.subarray(0, 64)) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0xef || b === 0xbb || b === 0xbf) continue; // blanks, UTF-8 BOM
    return b === 0x7b;
  }
  return false;
}

/** Bytes of an ONNX model → the ONNX engine; anything else is refused with the reason. */
export async function openBytes(bytes: Uint8Array, name: string, options: OpenOptions): Promise<OpenedModel> {
  if (bytes.length === 0) throw new SegGradCamError(`${name} is empty`, 'model');
  if (looksLikeJson(bytes)) {
    throw new SegGradCamError(
      `${name} is JSON (a TF.js model.json?): open a model.json by its path or URL, so its weight files can be found`,
      'model',
    );
  }
  if (!looksLikeOnnx(bytes)) throw new SegGradCamError(`${name} is neither an ONNX model nor a TF.js model.json`, 'model');
  return openOnnx(bytes, options);
}

/** The TF.js model in artifacts → the LayersModel or GraphModel engine. */
export async function openArtifacts(artifacts: tf.io.ModelArtifacts, options: OpenOptions): Promise<OpenedModel> {
  const data = artifacts.weightData;
  const held = data == null ? 0 : Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
  checkWeightBytes(artifacts.weightSpecs ?? [], held, 'model.json');
  const adapter = await adapterFromArtifacts(artifacts, options);
  return { adapter, engine: `tfjs ${adapter.kind}`, metadata: modelMetadata(artifacts.userDefinedMetadata) };
}

/** ONNX bytes on the runtime the options give (default onnxruntime-web). */
export async function openOnnx(bytes: Uint8Array, options: OpenOptions, engine = 'onnxruntime-web (wasm)'): Promise<OpenedModel> {
  const ort = await runtimeOf(options.ort ?? importOrtWeb);
  const { OnnxModelAdapter } = await import('./onnx/adapter.js');
  const label = options.ort ? engineName(ort, engine) : engine;
  let adapter: ModelAdapter;
  try {
    adapter = await OnnxModelAdapter.create(bytes, ort.name ? ort : { ...ort, name: label }, options);
  } catch (err) {
    if (err instanceof SegGradCamError) throw err;
    throw new SegGradCamError(`ONNX Runtime cannot load the model: ${firstLine(err)}`, 'model');
  }
  return { adapter, engine: label, metadata: {} };
}

/** The class names and input range a model.json's userDefinedMetadata carries, when well-formed. */
export function modelMetadata(metadata: unknown): ModelMetadata {
  const m = metadata as { classNames?: unknown; inputRange?: unknown } | undefined;
  const out: ModelMetadata = {};
  if (Array.isArray(m?.classNames) && m.classNames.every((s) => typeof s === 'string')) out.classNames = m.classNames as string[];
  if (Array.isArray(m?.inputRange) && m.inputRange.length === 2 && m.inputRange.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    out.inputRange = m.inputRange as [number, number];
  }
  return out;
}

async function openUrl(url: string, options: OpenOptions): Promise<OpenedModel> {
  if (isOnnxName(url)) return openOnnx(await fetchBytes(url, options), options);
  const handler = tf.io.browserHTTPRequest(url, options.onProgress ? { onProgress: options.onProgress } : undefined);
  let artifacts: tf.io.ModelArtifacts | undefined;
  try {
    artifacts = await handler.load?.();
  } catch (err) {
    throw new SegGradCamError(`cannot load the model from ${url}: ${firstLine(err)}`, 'model');
  }
  if (!artifacts) throw new SegGradCamError(`cannot load the model from ${url}`, 'model');
  return openArtifacts(artifacts, options);
}

async function fetchBytes(url: string, options: OpenOptions): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new SegGradCamError(`cannot load the model from ${url}: ${firstLine(err)}`, 'model');
  }
  if (!res.ok) throw new SegGradCamError(`cannot load the model from ${url}: HTTP ${res.status}`, 'model');
  const bytes = new Uint8Array(await res.arrayBuffer());
  options.onProgress?.(1);
  return bytes;
}

async function runtimeOf(provider: OrtProvider): Promise<OrtRuntime> {
  if (typeof provider !== 'function') return provider;
  try {
    return await provider();
  } catch (err) {
    if (err instanceof SegGradCamError) throw err;
    throw new SegGradCamError(`cannot start ONNX Runtime: ${firstLine(err)}`, 'model');
  }
}

/** onnxruntime-web's default build (its .wasm found next to the module by the bundler or in Node). */
async function importOrtWeb(): Promise<OrtRuntime> {
  return (await import('onnxruntime-web')) as unknown as OrtRuntime;
}

/** The runtime's name when a module was injected: onnxruntime-node's `env.versions` has `node`. */
function engineName(ort: OrtRuntime, fallback: string): string {
  const versions = (ort as { env?: { versions?: Record<string, unknown> } }).env?.versions;
  if (versions?.node) return 'onnxruntime-node (cpu)';
  if (versions?.web) return 'onnxruntime-web (wasm)';
  return fallback;
}

function isArtifacts(source: unknown): source is tf.io.ModelArtifacts {
  return typeof source === 'object' && source !== null && 'modelTopology' in source;
}

function toBytes(source: ModelBytes): Uint8Array {
  return source instanceof Uint8Array ? source : new Uint8Array(source);
}

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];
