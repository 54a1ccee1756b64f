/**
 * Messages between the page (main thread) and the inference worker. Everything here is
 * structured-cloneable; typed arrays travel as transferables.
 */
import type { ExplainRequest, Explainer, Explanation, Prediction } from '../../src/explain.js';
import type { ModelAdapter, OutputInfo } from '../../src/engine/contract.js';
import type { RequestEnvelope, WorkerEnvelope } from './worker-envelope.js';

export type BackendChoice = 'auto' | 'wasm' | 'webgl' | 'webgpu' | 'cpu';

/** Where a model comes from. */
export type ModelSource =
  /** A TF.js model.json (its weight files beside it) or a .onnx file. */
  | { kind: 'url'; url: string; labelsUrl?: string }
  /** model.json and its weight files, chosen together in a file picker (or dropped), or one .onnx file. */
  | { kind: 'files'; files: File[] };

/** Where the build puts onnxruntime-web's .wasm/.mjs files, relative to the page (web/vite.config.ts copies them). */
export const ORT_WASM_DIR = 'ort/';

/** What runs an ONNX model in the page (shown instead of the TF.js backend while one is open). */
export const ONNX_ENGINE = 'onnxruntime-web (wasm)';

/** A layer the model offers, marked when it is the bottleneck (the default): one of Explainer.layers(). */
export type LayerRow = ReturnType<Explainer['layers']>[number];

export interface ModelInfo {
  kind: ModelAdapter['kind'];
  /**
   * What runs the model when it is not TF.js (ONNX_ENGINE for .onnx models; TF.js on the chosen
   * backend then only pre- and post-processes); null for TF.js models.
   */
  engine: string | null;
  input: ModelAdapter['input'];
  output: OutputInfo;
  classCount: number;
  /** From the labels file or the model's metadata; generated names otherwise. */
  classNames: string[] | null;
  layers: LayerRow[];
  bottleneck: string;
  inputRange: [number, number];
  loadMs: number;
  /** Methods this model cannot run (an engine capability it lacks), with the reason: see src/explain/support.ts. */
  unsupported: Record<string, string>;
}

export interface PredictionInfo extends Prediction {
  /** Forward pass time (the one forward of this image and model). */
  ms: number;
}

/** One question: the library's ExplainRequest as it crosses to the worker (the method by name, the class by index). */
export type ExplainParams = Required<Pick<ExplainRequest, 'region' | 'layer' | 'score'>> &
  Pick<ExplainRequest, 'negative' | 'normalize'> & { classId?: number; method: string; contrastClass?: number };

/**
 * What the page gets back for one explanation: the library's Explanation (one layer, no
 * augmentation or truncation, so without those fields), and how long it took.
 */
export interface ExplanationMsg extends Omit<Explanation, 'layers' | 'augmentations' | 'receptiveField'> {
  /** Time from the request reaching the worker to the answer. */
  ms: number;
  /** True when this answer reused the cached forward pass of the image. */
  cached: boolean;
  /** Model forward and backward passes this answer ran (the cached forward pass not counted). */
  passes: { forward: number; backward: number };
  /** TF.js tensors alive in the worker after the answer (a leak shows as growth between answers). */
  tensors: number;
}

export interface BackendReport {
  backend: string;
  /** How the backend was chosen: per candidate, its probe time in ms or why it was not used. */
  probes: Array<{ name: string; ms?: number; note?: string }>;
  reason: string;
}

/** One probe of a BackendReport in words: its time (`digits` decimals), or why it was not used. */
export function probeText(p: BackendReport['probes'][number], digits: number): string {
  return p.ms !== undefined ? `${p.name} ${p.ms.toFixed(digits)} ms${p.note ? ` (${p.note})` : ''}` : `${p.name}: ${p.note}`;
}

export type Request =
  /** `ortWasmBase`: the absolute URL of ORT_WASM_DIR (onnxruntime-web's files, fetched when an .onnx model is opened). */
  | { type: 'init'; backend: BackendChoice; cachedChoice?: string; ortWasmBase: string }
  | { type: 'load-model'; source: ModelSource; classNames?: string[] }
  | { type: 'set-image'; width: number; height: number; data: Uint8ClampedArray }
  | { type: 'explain'; params: ExplainParams }
  | { type: 'explain-layers'; params: Omit<ExplainParams, 'layer'>; layers: string[] }
  /** Stops the running explanation (and drops queued ones): they are answered 'superseded'. Answered at once. */
  | { type: 'cancel' };

export type Reply =
  /** `inputMethods`: the methods that explain the model input whatever the layer. */
  /** `negativeMethods`: those with a negative map; `classFreeMethods`: those whose map does not depend on the class (no contrast). */
  | {
      type: 'init';
      report: BackendReport;
      methods: string[];
      inputMethods: string[];
      negativeMethods: string[];
      classFreeMethods: string[];
    }
  | { type: 'load-model'; info: ModelInfo }
  | { type: 'set-image'; prediction: PredictionInfo }
  | { type: 'explain'; explanation: ExplanationMsg }
  | { type: 'layer-result'; index: number; explanation: ExplanationMsg }
  | { type: 'explain-layers'; ms: number }
  | { type: 'cancel' }
  | { type: 'superseded' };

/** Worker → page envelope (a partial answer: one cell of the layer grid). */
export type WorkerMessage = WorkerEnvelope<Reply, Progress, Reply>;

export interface Progress {
  phase: string;
  /** 0..1 when known. */
  fraction?: number;
  /** Passes run so far by a multi-pass method, and how many it will run when known. */
  passes?: { forward: number; backward: number; expected: number | null };
}

/** Page → worker envelope. */
export type WorkerRequest = RequestEnvelope<Request>;
