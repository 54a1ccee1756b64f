/**
 * Messages between the page (main thread) and the inference worker. Everything here is
 * structured-cloneable; typed arrays travel as transferables.
 */
import type { Region } from '../../src/target/region.js';

export type BackendChoice = 'auto' | 'wasm' | 'webgl' | 'webgpu' | 'cpu';

/** Where a model comes from. */
export type ModelSource =
  | { kind: 'url'; url: string; labelsUrl?: string }
  /** model.json and its weight files, chosen together in a file picker (or dropped). */
  | { kind: 'files'; files: File[] };

export interface LayerRow {
  name: string;
  type: string;
  outputShape: number[];
  bottleneck: boolean;
}

export interface ModelInfo {
  kind: string;
  input: { width: number; height: number; channels: number };
  output: { width: number; height: number; channels: number; activation: string; kind: string };
  classCount: number;
  /** From the labels file or the model's metadata; generated names otherwise. */
  classNames: string[] | null;
  layers: LayerRow[];
  bottleneck: string;
  inputRange: [number, number];
  loadMs: number;
}

export interface PredictionInfo {
  labels: Int32Array;
  width: number;
  height: number;
  /** Forward pass time (the one forward of this image and model). */
  ms: number;
}

export interface ExplainParams {
  region: Region;
  classId?: number;
  layer: string;
  method: string;
  score: 'logits' | 'probability';
}

/** What the page gets back for one explanation: the library's Explanation, minus nothing. */
export interface ExplanationMsg {
  layer: { name: string; type: string; outputShape: number[] };
  method: string;
  classIndex: number;
  className?: string;
  score: 'logits' | 'probability';
  scoreValue: number;
  cam: Float32Array;
  camWidth: number;
  camHeight: number;
  weights: Float32Array | null;
  heatmap: Float32Array;
  width: number;
  height: number;
  empty: boolean;
  camMax: number;
  regionMask: Uint8Array;
  prediction: { labels: Int32Array; width: number; height: number };
  /** Time from the request reaching the worker to the answer (backward only when the forward was cached). */
  ms: number;
  /** True when this answer reused the cached forward pass. */
  cached: boolean;
}

export interface BackendReport {
  backend: string;
  /** How the backend was chosen: per candidate, its probe time in ms or why it was not used. */
  probes: Array<{ name: string; ms?: number; note?: string }>;
  reason: string;
}

export type Request =
  | { type: 'init'; backend: BackendChoice; cachedChoice?: string }
  | { type: 'load-model'; source: ModelSource; classNames?: string[] }
  | { type: 'set-image'; width: number; height: number; data: Uint8ClampedArray }
  | { type: 'explain'; params: ExplainParams }
  | { type: 'explain-layers'; params: Omit<ExplainParams, 'layer'>; layers: string[] };

export type Reply =
  | { type: 'init'; report: BackendReport; methods: string[] }
  | { type: 'load-model'; info: ModelInfo }
  | { type: 'set-image'; prediction: PredictionInfo }
  | { type: 'explain'; explanation: ExplanationMsg }
  | { type: 'layer-result'; index: number; explanation: ExplanationMsg }
  | { type: 'explain-layers'; ms: number }
  | { type: 'superseded' };

/** Worker → page envelope. */
export type WorkerMessage =
  | { id: number; ok: true; reply: Reply }
  | { id: number; ok: false; error: { message: string; code?: string } }
  | { id: number; progress: Progress }
  /** A part of the answer that arrives before the end (one cell of the layer grid). */
  | { id: number; partial: Reply };

export interface Progress {
  phase: string;
  /** 0..1 when known. */
  fraction?: number;
}

/** Page → worker envelope. */
export interface WorkerRequest {
  id: number;
  request: Request;
}
