/**
 * What the volume worker runs for a prediction and a question. A volume of the model's input size
 * takes one run (the library's explainVolume, the prediction handed over from the cache); a larger
 * one sliding windows — the library's explainVolumeGrid itself (src/volume/explain-grid.ts), with
 * every patch's forward result of the volume's prediction kept (PatchMemo) and handed back when
 * explainVolumeGrid predicts that patch again: the forward runs once per volume, each question
 * runs backward only the patches touching M.
 *
 * Stopping: the model is wrapped so that every run (each patch's forward or gradient run) first
 * lets the worker's queued messages in and then asks `check`, which throws Stopped for a Cancel
 * or a newer question — a long explanation stops between two patches.
 */
import { SegGradCamError } from '../../../src/errors.js';
import { argmaxLabels, camOnVolume, explainVolume } from '../../../src/volume/explain.js';
import { explainVolumeGrid } from '../../../src/volume/explain-grid.js';
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

/**
 * The forward results of a volume's patches, found again by the patch's values (compared exactly;
 * a hash narrows the search). Up to `budget` bytes of patches and logits are kept; beyond that a
 * patch is run again when asked.
 */
export class PatchMemo {
  private readonly entries = new Map<number, Array<{ x: Float32Array; y: Float32Array }>>();
  private bytes = 0;
  constructor(private readonly budget = 512 * 2 ** 20) {}

  private static hash(x: Float32Array): number {
    const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
    let h = 0x811c9dc5 ^ x.length;
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
    return h >>> 0;
  }

  get(x: Float32Array): Float32Array | null {
    for (const e of this.entries.get(PatchMemo.hash(x)) ?? []) {
      if (e.x.length !== x.length) continue;
      let same = true;
      for (let i = 0; i < x.length && same; i++) same = Object.is(e.x[i], x[i]);
      if (same) return e.y.slice();
    }
    return null;
  }

  put(x: Float32Array, y: Float32Array): void {
    if (this.bytes + x.byteLength + y.byteLength > this.budget) return;
    this.bytes += x.byteLength + y.byteLength;
    const h = PatchMemo.hash(x);
    this.entries.set(h, [...(this.entries.get(h) ?? []), { x: x.slice(), y: y.slice() }]);
  }
}

/** The model whose predict() answers from the memo when it can (and, with `record`, keeps what it runs); `runs` counts the model's forward runs. */
function memoized(m: OnnxVolumeModel, memo: PatchMemo, record: boolean, runs = { n: 0 }): OnnxVolumeModel {
  const view = Object.create(m) as OnnxVolumeModel;
  view.predict = async (x: Float32Array) => {
    const hit = memo.get(x);
    if (hit) return hit;
    runs.n++;
    const y = await m.predict(x);
    if (record) memo.put(x, y);
    return y;
  };
  return view;
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
  /** Sliding windows: every patch's forward result. */
  memo: PatchMemo | null;
}

/** The volume's prediction: one run, or sliding windows at `overlap` (every patch's forward result kept). */
export async function predictVolume(
  m: OnnxVolumeModel,
  data: Float32Array,
  dims: Dims3,
  overlap: number,
  onPatch: OnPatch,
): Promise<Prediction> {
  const t0 = performance.now();
  const k = m.logitsDims[1];
  if (!slides(m, dims)) {
    const logits = await m.predict(data);
    const [, , d, h, w] = m.logitsDims;
    return { logits, labels: argmaxLabels(logits, k), dims: [d, h, w], patches: 1, ms: performance.now() - t0, memo: null };
  }
  const memo = new PatchMemo();
  const r = await predictSlidingWindow(memoized(m, memo, true), data, dims, { onPatch, overlap });
  return { logits: r.logits, labels: argmaxLabels(r.logits, k), dims, patches: r.starts.length, ms: performance.now() - t0, memo };
}

/**
 * The model as explainVolume sees it, its prediction of `data` taken from the cache; `runs` counts
 * the other forward runs (Score-CAM's masked volumes, Ablation-CAM's runs from the layer).
 */
function withCachedPrediction(m: OnnxVolumeModel, data: Float32Array, logits: Float32Array, runs: { n: number }): OnnxVolumeModel {
  const view = Object.create(m) as OnnxVolumeModel;
  view.predict = (x: Float32Array) => {
    if (x === data) return Promise.resolve(logits.slice());
    runs.n++;
    return m.predict(x);
  };
  view.predictReplaced = (x: Float32Array, layer: string, replacement: Float32Array) => {
    runs.n++;
    return m.predictReplaced(x, layer, replacement);
  };
  return view;
}

export type Explained = Omit<VolumeAnswer, 'ms' | 'cached'>;

/** One question on the volume with its cached prediction (see the module note), sliding windows at `params.overlap`. */
export async function explainQuestion(
  m: OnnxVolumeModel,
  data: Float32Array,
  dims: Dims3,
  prediction: Prediction,
  params: ExplainVolumeParams & { overlap: number },
  onPatch: OnPatch,
): Promise<Explained> {
  const method = checkVolumeMethod(params.method ?? 'seg-grad-cam');
  if (!slides(m, dims)) {
    const runs = { n: 0 };
    const x = await explainVolume(withCachedPrediction(m, data, prediction.logits, runs), data, { ...params, method });
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
      forwardRuns: runs.n,
    };
  }
  const runs = { n: 0 };
  const r = await explainVolumeGrid(memoized(m, prediction.memo ?? new PatchMemo(0), false, runs), data, dims, {
    ...params,
    method,
    onPatch,
  });
  return {
    layer: r.layer,
    method: r.method,
    classId: r.classId,
    score: r.score,
    alpha: r.alpha,
    cam: r.cam,
    camDims: dims,
    layerDims: r.camDims,
    heat: r.cam,
    mask: r.mask,
    maskDims: dims,
    sliding: { total: r.patches.total, touched: r.patches.touched, skipped: r.patches.skipped, forwardRuns: runs.n },
    forwardRuns: runs.n,
  };
}
