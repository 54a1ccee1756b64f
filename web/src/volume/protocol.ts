/**
 * Messages between the volume page (./main.ts) and its worker (./worker.ts). Volumes and CAMs are
 * [D, H, W] Float32Arrays in C order (the NIfTI data order, docs/volumes.md) and travel as
 * transferables.
 */
import type { Dims3, VolumeRegion, Voxel } from '../../../src/volume/regions.js';
import type { VolumeLayer } from '../../../src/volume/onnx-volume.js';

/** Where a model or a volume comes from: a URL (relative to the page) or a file's bytes. */
export type VolumeSource = { kind: 'url'; url: string } | { kind: 'bytes'; bytes: Uint8Array; name: string };

export type Intensity = 'none' | 'zscore' | 'clip-zscore';

export interface VolumeModelInfo {
  name: string;
  layers: VolumeLayer[];
  /** The default layer (the smallest grid, last in execution order). */
  bottleneck: string;
  /** [1, C, D, H, W]; 0 = free (the volume gives it). */
  inputDims: number[];
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
  /** The layer list when the model's sizes came from the volume (free input sizes), else null. */
  model: VolumeModelInfo | null;
}

export interface VolumeAnswer {
  layer: string;
  classId: number;
  score: number;
  alpha: Float32Array;
  /** ReLU(Σ α_k A^k) on the layer grid, not normalised. */
  cam: Float32Array;
  camDims: Dims3;
  /** The CAM on the volume grid [D, H, W] (nearest), not normalised: what the views draw (divided by its maximum). */
  heat: Float32Array;
  /** M on the logits grid. */
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
}

export type VolumeRequest =
  | { type: 'init'; ortWasmBase: string }
  | { type: 'load-model'; source: VolumeSource }
  | { type: 'load-volume'; source: VolumeSource; intensity: Intensity }
  | { type: 'predict' }
  | { type: 'explain'; params: ExplainVolumeParams }
  | { type: 'cancel' };

export type VolumeReply =
  | { type: 'init' }
  | { type: 'load-model'; info: VolumeModelInfo }
  | { type: 'load-volume'; info: VolumeInfo }
  | { type: 'predict'; prediction: VolumePrediction }
  | { type: 'explain'; answer: VolumeAnswer }
  | { type: 'cancel' }
  | { type: 'superseded' };

export type VolumeWorkerMessage =
  | { id: number; ok: true; reply: VolumeReply }
  | { id: number; ok: false; error: { message: string; code?: string } }
  | { id: number; progress: string };

export interface VolumeWorkerRequest {
  id: number;
  request: VolumeRequest;
}

export type { Dims3, Voxel, VolumeRegion };
