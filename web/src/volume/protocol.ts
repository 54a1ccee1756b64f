/**
 * Messages between the volume page (./main.ts) and its worker (./worker.ts). Volumes and CAMs are
 * [D, H, W] Float32Arrays in C order (the NIfTI data order, docs/volumes.md) and travel as
 * transferables.
 */
import type { MethodOptions } from '../../../src/methods/index.js';
import type { Dims3, VolumeRegion, Voxel } from '../../../src/volume/regions.js';
import type { VolumeLayer } from '../../../src/volume/onnx-volume.js';
import type { LayersFiles } from './layers-volume.js';
import type { RequestEnvelope, WorkerEnvelope } from '../worker-envelope.js';

/** Where a model or a volume comes from: a URL (relative to the page) or a file's bytes. */
export type VolumeSource = { kind: 'url'; url: string } | { kind: 'bytes'; bytes: Uint8Array; name: string };

/** A volume given as PNG files, one axial slice each (sorted by name in the worker, ./png-slices.ts). */
export interface SliceFiles {
  kind: 'slices';
  files: Array<{ bytes: Uint8Array; name: string }>;
}

export type Intensity = 'none' | 'zscore' | 'clip-zscore';

export interface VolumeModelInfo {
  name: string;
  layers: VolumeLayer[];
  /** The default layer (the smallest grid, last in execution order). */
  bottleneck: string;
  /** [1, C, D, H, W]; 0 = free (the volume gives it). */
  inputDims: number[];
  /** Whether the ONNX model declares free input sizes (then the page's Patch, else the volume, gives them). */
  freeSizes: boolean;
  classCount: number;
  activation: 'softmax' | 'sigmoid' | 'none';
  loadMs: number;
}

export interface VolumeInfo {
  name: string;
  /** [D, H, W] (NIfTI [nz, ny, nx]). */
  dims: Dims3;
  /** The values the model reads (after the intensity option). */
  data: Float32Array;
  spacing: [number, number, number];
  affineSource: string;
}

export interface VolumePrediction {
  /** The class per voxel of the logits grid [d, h, w]. */
  labels: Int32Array;
  dims: Dims3;
  /** Forward time (once per model and volume). */
  ms: number;
  /** Voxels per class. */
  counts: number[];
  /** Sliding-window patches of the prediction (1: the volume is the model's input size). */
  patches: number;
  /** The layer list when the model's sizes came from the volume (free input sizes), else null. */
  model: VolumeModelInfo | null;
}

export interface VolumeAnswer {
  layer: string;
  /** The CAM method (src/volume/methods.ts VOLUME_METHODS). */
  method: string;
  classId: number;
  score: number;
  alpha: Float32Array;
  /**
   * ReLU(Σ α_k A^k) on the layer grid, not normalised. With sliding windows the blended CAM on the
   * volume grid (the same values as `heat`; camDims is then the volume's size).
   */
  cam: Float32Array;
  camDims: Dims3;
  /** The layer's grid (of one patch with sliding windows). */
  layerDims: Dims3;
  /**
   * Sliding windows: the patches planned, run backward (those touching M) and skipped, and the
   * forward-only runs the question needed besides (0 when the volume's kept prediction served);
   * null for one run.
   */
  sliding: { total: number; touched: number; skipped: number; forwardRuns: number } | null;
  /** Forward-only runs the question needed besides the kept prediction (Score-CAM's masked volumes, say). */
  forwardRuns: number;
  /** The CAM on the volume grid [D, H, W] (nearest), not normalised: what the views draw (divided by its maximum). */
  heat: Float32Array;
  /** M on the logits grid (the volume grid with sliding windows). */
  mask: Float32Array;
  maskDims: Dims3;
  /** Worker time: from the request reaching the worker to the answer. */
  ms: number;
  /** True when the prediction (labels and class choice) came from the cache. */
  cached: boolean;
}

export interface ExplainVolumeParams {
  region: VolumeRegion;
  classId?: number;
  layer?: string;
  /** A method of VOLUME_METHODS (default seg-grad-cam). */
  method?: string;
  /** The method's options (the library's VolumeExplainOptions.methodOptions; the defaults when absent). */
  methodOptions?: MethodOptions;
}

export type VolumeRequest =
  | { type: 'init'; ortWasmBase: string }
  | { type: 'load-model'; source: VolumeSource | LayersFiles }
  /** `current`: the volume last read, again with another intensity option. */
  | { type: 'load-volume'; source: VolumeSource | SliceFiles | { kind: 'current' }; intensity: Intensity }
  | { type: 'predict' }
  | { type: 'explain'; params: ExplainVolumeParams }
  /** The patch a model with free input sizes is built at (null: the volume's size, one run). */
  | { type: 'set-patch'; patch: Dims3 | null }
  /** The overlap of neighbouring sliding windows (0.5 ≤ f < 1; 0.5 until set): the next prediction runs with it. */
  | { type: 'set-overlap'; overlap: number }
  | { type: 'cancel' };

export type VolumeReply =
  /** `methods`: the library's VOLUME_METHODS (the page lists them; new ones appear by themselves); `negativeMethods`: those with a negative map. */
  | { type: 'init'; methods: string[]; negativeMethods: string[] }
  | { type: 'load-model'; info: VolumeModelInfo }
  | { type: 'load-volume'; info: VolumeInfo }
  | { type: 'predict'; prediction: VolumePrediction }
  | { type: 'explain'; answer: VolumeAnswer }
  | { type: 'set-patch' }
  | { type: 'set-overlap' }
  | { type: 'cancel' }
  /** A newer question came: this one stopped (before its run or between two patch runs). */
  | { type: 'superseded' }
  /** Cancel stopped this prediction or question (before its run or between two patch runs). */
  | { type: 'cancelled' };

/** A progress message: what runs; `done`/`total`: sliding-window patches run so far (with `stage`), for the progress bar. */
export interface VolumeProgress {
  text: string;
  done?: number;
  total?: number;
}

/** Worker → page envelope. */
export type VolumeWorkerMessage = WorkerEnvelope<VolumeReply, VolumeProgress>;

/** Page → worker envelope. */
export type VolumeWorkerRequest = RequestEnvelope<VolumeRequest>;

export type { Dims3, LayersFiles, Voxel, VolumeRegion };
