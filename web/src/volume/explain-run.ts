/**
 * What the volume worker runs for a prediction and a question. A volume of the model's input size
 * takes one run (the library's explainVolume); a larger one sliding windows — the steps of the
 * library's explainVolumeGrid (src/volume/explain-grid.ts) with the blended prediction computed
 * once per volume and reused: predictSlidingWindow, then per question resolveVolumeRegion,
 * volumeCotangent and explainSlidingWindow (only the patches touching M run backward).
 *
 * Stopping: the model is wrapped so that every run (each patch's forward or gradient run) first
 * lets the worker's queued messages in and then asks `check`, which throws Stopped for a Cancel
 * or a newer question — a long explanation stops between two patches.
 */
import { SegGradCamError } from '../../../src/errors.js';
import {
  argmaxLabels,
  camOnVolume,
  defaultVolumeLayer,
  explainVolume,
  needsVolumePrediction,
  resolveVolumeRegion,
  volumeCotangent,
} from '../../../src/volume/explain.js';
import { explainSlidingWindow } from '../../../src/volume/explain-sliding.js';
import { checkVolumeMethod } from '../../../src/volume/methods.js';
import type { OnnxVolumeModel } from '../../../src/volume/onnx-volume.js';
import { predictSlidingWindow } from '../../../src/volume/sliding-window.js';
import type { Dims3, ExplainVolumeParams, VolumeAnswer } from './protocol.js';

/** A run stopped between two model runs. */
export class Stopped extends Error {
  constructor(readonly why: 'cancelled' | 'superseded') {
    super(why);
  }
}

/** Patch progress: runs done, runs planned, which stage. */
export type OnPatch = (done: number, total: number, stage: 'predict' | 'gradient') => void;

/** Lets queued worker messages in (a macrotask; a MessageChannel is not clamped as nested timeouts are). */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/** The model with a stop point before each predict and gradient run. */
export function stoppable(m: OnnxVolumeModel, check: () => void): OnnxVolumeModel {
  const view = Object.create(m) as OnnxVolumeModel;
  view.predict = async (x) => {
    await yieldToEvents();
    check();
    return m.predict(x);
  };
  view.gradient = async (x, layer, cotangent) => {
    await yieldToEvents();
    check();
    return m.gradient(x, layer, cotangent);
  };
  return view;
}

const patchOf = (m: OnnxVolumeModel): Dims3 => [m.inputDims[2], m.inputDims[3], m.inputDims[4]];

/** Whether the volume needs sliding windows (larger than the model's input); refuses one smaller along an axis. */
export function slides(m: OnnxVolumeModel, dims: Dims3): boolean {
  const patch = patchOf(m);
  if (patch.every((p, i) => p === dims[i])) return false;
  if (patch.some((p, i) => p > dims[i]))
    throw new SegGradCamError(
      `the volume (${dims.join('x')}) is smaller than the model's patch (${patch.join('x')}) along an axis: pad it first`,
      'shape',
    );
  return true;
}

export interface Prediction {
  /** [1, K, d, h, w] of one run, or the blended [K, D, H, W] with sliding windows. */
  logits: Float32Array;
  labels: Int32Array;
  /** The grid of the labels: the logits grid, or the volume's with sliding windows. */
  dims: Dims3;
  /** Forward runs (patches). */
  patches: number;
  ms: number;
}

export async function predictVolume(m: OnnxVolumeModel, data: Float32Array, dims: Dims3, onPatch: OnPatch): Promise<Prediction> {
  const t0 = performance.now();
  const k = m.logitsDims[1];
  if (!slides(m, dims)) {
    const logits = await m.predict(data);
    const [, , d, h, w] = m.logitsDims;
    return { logits, labels: argmaxLabels(logits, k), dims: [d, h, w], patches: 1, ms: performance.now() - t0 };
  }
  const r = await predictSlidingWindow(m, data, dims, { onPatch });
  return { logits: r.logits, labels: argmaxLabels(r.logits, k), dims, patches: r.starts.length, ms: performance.now() - t0 };
}

/** The model as explainVolume sees it, its prediction of `data` taken from the cache. */
function withCachedPrediction(m: OnnxVolumeModel, data: Float32Array, logits: Float32Array): OnnxVolumeModel {
  const view = Object.create(m) as OnnxVolumeModel;
  view.predict = (x: Float32Array) => (x === data ? Promise.resolve(logits.slice()) : m.predict(x));
  return view;
}

export type Explained = Omit<VolumeAnswer, 'ms' | 'cached'>;

/** One question on the volume with its cached prediction (see the module note). */
export async function explainQuestion(
  m: OnnxVolumeModel,
  data: Float32Array,
  dims: Dims3,
  prediction: Prediction,
  params: ExplainVolumeParams,
  onPatch: OnPatch,
): Promise<Explained> {
  const method = checkVolumeMethod(params.method ?? 'seg-grad-cam');
  if (!slides(m, dims)) {
    const x = await explainVolume(withCachedPrediction(m, data, prediction.logits), data, { ...params, method });
    const [, , d, h, w] = m.logitsDims;
    return {
      layer: x.layer,
      method: x.method,
      classId: x.classId,
      score: x.score,
      alpha: x.alpha,
      cam: x.cam,
      camDims: x.camDims,
      layerDims: x.camDims,
      heat: camOnVolume(x.cam, x.camDims, dims),
      mask: x.mask,
      maskDims: [d, h, w],
      sliding: null,
    };
  }
  const layer = params.layer ?? defaultVolumeLayer(m);
  const node = m.resolve(layer);
  const options = { region: params.region, classId: params.classId, layer, method };
  const k = m.logitsDims[1];
  const logits = needsVolumePrediction(options) ? prediction.logits : null;
  const { mask, classId } = resolveVolumeRegion(options.region, options.classId, logits, k, dims, dims);
  const cotangent = volumeCotangent(options, mask, classId, k, logits);
  const r = await explainSlidingWindow(m, data, dims, layer, cotangent, { method, onPatch });
  const [, , ld, lh, lw] = m.analysis.shape(node);
  return {
    layer,
    method,
    classId,
    score: r.score ?? NaN,
    alpha: r.alpha,
    cam: r.cam,
    camDims: dims,
    layerDims: [ld, lh, lw],
    heat: r.cam,
    mask,
    maskDims: dims,
    sliding: { total: r.patches.length + r.skipped, touched: r.patches.length, skipped: r.skipped },
  };
}
