/**
 * One explanation on the grid of the volume, whatever its size: a volume the size of the model's
 * input goes through one run (explainVolume, the CAM brought to the voxels by camOnVolume); a
 * larger one through sliding windows (predictSlidingWindow when the class or M needs the
 * prediction, then explainSlidingWindow). What the CLI's explain-volume and the explorer call.
 */
import type { InferenceSession } from 'onnxruntime-common';
import { SegGradCamError } from '../errors.js';
import type { OrtRuntime } from '../engine/onnx/options.js';
import { decodeModel } from '../engine/onnx/proto.js';
import { explainSlidingWindow } from './explain-sliding.js';
import {
  camOnVolume,
  defaultVolumeLayer,
  explainVolume,
  needsVolumePrediction,
  resolveVolumeRegion,
  volumeCotangent,
  type VolumeExplainOptions,
} from './explain.js';
import { checkVolumeMethod } from './methods.js';
import { OnnxVolumeModel } from './onnx-volume.js';
import { volumeRegionMask, type Dims3, type VolumeRegion } from './regions.js';
import { inputAttributionMap, isInputMethod } from './input-attribution.js';
import {
  assembleInputGradient,
  patchScore,
  predictSlidingWindow,
  slidingWindowGradient,
  type SlidingWindowOptions,
  type SparseCotangent,
} from './sliding-window.js';

/** The model input's sizes [batch, C, D, H, W] as declared: a number, or null where the size is free. */
export function volumeModelInputDims(bytes: Uint8Array): Array<number | null> {
  const g = decodeModel(bytes).graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name));
  if (inputs.length !== 1) throw new SegGradCamError(`unsupported volume model: expected one input, got ${inputs.length}`, 'model');
  const dims = inputs[0].type?.tensorType?.shape?.dim ?? [];
  if (dims.length !== 5)
    throw new SegGradCamError(
      `not a volume model: its input has rank ${dims.length}, expected [batch, channels, depth, height, width]`,
      'model',
    );
  return dims.map((d) => (d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null));
}

/**
 * Opens a volume model for a volume of `volume` voxels ([D, H, W]): fixed input sizes are the
 * patch; free sizes take `patch` when given, else the volume's (one run over the whole volume).
 * A given patch must agree with the model's fixed sizes.
 */
export async function openVolumeModel(
  bytes: Uint8Array,
  ort: OrtRuntime,
  volume: Dims3,
  options: { patch?: Dims3; sessionOptions?: InferenceSession.SessionOptions; output?: string } = {},
): Promise<OnnxVolumeModel> {
  const declared = volumeModelInputDims(bytes);
  const size = (i: number): number => {
    const fixed = declared[i + 2];
    const want = options.patch?.[i];
    if (fixed != null && want != null && fixed !== want)
      throw new SegGradCamError(
        `the patch's ${['depth', 'height', 'width'][i]} (${want}) differs from the model's fixed input (${fixed})`,
        'usage',
      );
    return fixed ?? want ?? volume[i];
  };
  const [depth, height, width] = [size(0), size(1), size(2)];
  return OnnxVolumeModel.create(bytes, ort, { depth, height, width, sessionOptions: options.sessionOptions, output: options.output });
}

export interface VolumeGridOptions extends VolumeExplainOptions, SlidingWindowOptions {}

export interface VolumeGridExplanation {
  method: string;
  layer: string;
  classId: number;
  /** S = Σ cot · Y over the (blended) logits (Σ_M y^c for every method but finer-cam). */
  score: number;
  /** The channel weights (empty for methods without them); over patches: one α, see explain-sliding.ts. */
  alpha: Float32Array;
  weights: Float32Array | null;
  /** The raw CAM on the volume grid [D, H, W], not normalised. */
  cam: Float32Array;
  /** M on the volume grid (0/1). */
  mask: Float32Array;
  dims: Dims3;
  /** The layer's grid ([d, h, w] of one patch). */
  camDims: Dims3;
  sliding: boolean;
  /**
   * Patches planned, run backward, skipped (1, 1, 0 without sliding windows), and predicted first (0 when the
   * class was given and M does not depend on the prediction; only the patches covering M when only the class
   * needed it; all of them for class and component regions).
   */
  patches: { total: number; touched: number; skipped: number; predicted?: number };
  timings: { predictMs: number; explainMs: number; totalMs: number };
}

const spatial = (model: OnnxVolumeModel): Dims3 => [model.inputDims[2], model.inputDims[3], model.inputDims[4]];

/** Explains M of a [C, D, H, W] volume on its own grid (see the module note). */
export async function explainVolumeGrid(
  model: OnnxVolumeModel,
  volume: Float32Array,
  dims: Dims3,
  options: VolumeGridOptions,
): Promise<VolumeGridExplanation> {
  const t0 = performance.now();
  const method = checkVolumeMethod(options.method ?? 'seg-grad-cam');
  const patch = spatial(model);
  const channels = model.inputDims[1];
  const V = dims[0] * dims[1] * dims[2];
  if (volume.length !== channels * V)
    throw new SegGradCamError(
      `the model reads ${channels} channel(s); a ${dims.join('x')} volume of ${volume.length} values is not that`,
      'shape',
    );
  const layer = isInputMethod(method) ? 'input' : (options.layer ?? defaultVolumeLayer(model));
  model.resolve(layer);
  if (patch.every((p, i) => p === dims[i])) {
    const e = await explainVolume(model, volume, { ...options, method, layer });
    const [, , d, h, w] = model.logitsDims;
    const t1 = performance.now();
    return {
      method,
      layer,
      classId: e.classId,
      score: e.score,
      alpha: e.alpha,
      weights: e.weights,
      cam: camOnVolume(e.cam, e.camDims, dims),
      mask: camOnVolume(e.mask, [d, h, w], dims),
      dims,
      camDims: e.camDims,
      sliding: false,
      patches: { total: 1, touched: 1, skipped: 0 },
      timings: { predictMs: 0, explainMs: t1 - t0, totalMs: t1 - t0 },
    };
  }
  if (patch.some((p, i) => p > dims[i]))
    throw new SegGradCamError(
      `the volume (${dims.join('x')}) is smaller than the model's patch (${patch.join('x')}) along an axis: pad it first`,
      'shape',
    );
  const k = model.logitsDims[1];
  let logits: Float32Array | null = null;
  let predicted = 0;
  if (needsVolumePrediction({ ...options, method })) {
    // M does not depend on the prediction for these kinds: only the patches covering M are predicted (exact on M).
    const kind = options.region.kind;
    const only =
      kind === 'class' || kind === 'component' ? undefined : volumeRegionMask(options.region, { inputDims: dims, outputDims: dims });
    const p = await predictSlidingWindow(model, volume, dims, { ...options, only });
    logits = p.logits;
    predicted = p.starts.length - p.skipped;
  }
  const t1 = performance.now();
  const { mask, classId } = resolveVolumeRegion(options.region, options.classId, logits, k, dims, dims);
  // S = Σ_M y^c: M's entries of the class (|M| of K·V, nothing volume-sized); Finer-CAM's objective is dense.
  const cotangent =
    method === 'finer-cam'
      ? volumeCotangent({ ...options, method }, mask, classId, k, logits)
      : maskCotangent(mask, classId, dims, options.region);
  if (isInputMethod(method)) {
    // ∂S/∂x of the blended S: the touched patches' input gradients summed in place.
    const g = await slidingWindowGradient(model, volume, dims, 'input', cotangent, options);
    let score = 0;
    for (const p of g.patches) score += patchScore(p);
    const map = inputAttributionMap(
      method,
      volume,
      assembleInputGradient(g.patches, channels, dims),
      channels,
      options.methodOptions?.negative,
    );
    const t2 = performance.now();
    return {
      method,
      layer,
      classId,
      score,
      alpha: new Float32Array(0),
      weights: null,
      cam: map.cam,
      mask,
      dims,
      camDims: dims,
      sliding: true,
      patches: { total: g.starts.length, touched: g.patches.length, skipped: g.skipped, predicted },
      timings: { predictMs: t1 - t0, explainMs: t2 - t1, totalMs: t2 - t0 },
    };
  }
  const r = await explainSlidingWindow(model, volume, dims, layer, cotangent, { ...options, method });
  const t2 = performance.now();
  const [, , ld, lh, lw] = model.analysis.shape(model.resolve(layer));
  return {
    method,
    layer,
    classId,
    score: r.score ?? NaN,
    alpha: r.alpha,
    weights: r.weights ?? null,
    cam: r.cam,
    mask,
    dims,
    camDims: [ld, lh, lw],
    sliding: true,
    patches: { total: r.patches.length + r.skipped, touched: r.patches.length, skipped: r.skipped, predicted },
    timings: { predictMs: t1 - t0, explainMs: t2 - t1, totalMs: t2 - t0 },
  };
}

/** The voxels a voxel, voxel-list or box region can reach ([lo, hi], inclusive), null for the other kinds (M anywhere). */
function regionBounds(region: VolumeRegion): [Dims3, Dims3] | null {
  const pts: number[][] =
    region.kind === 'voxel'
      ? [region.voxel]
      : region.kind === 'voxels'
        ? region.voxels
        : region.kind === 'box'
          ? [region.box.slice(0, 3), region.box.slice(3, 6)]
          : [];
  if (pts.length === 0) return null;
  const lo: Dims3 = [Infinity, Infinity, Infinity];
  const hi: Dims3 = [-Infinity, -Infinity, -Infinity];
  for (const p of pts)
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], p[a]);
      hi[a] = Math.max(hi[a], p[a]);
    }
  return [lo, hi];
}

/**
 * The cotangent M × the class one-hot over the blended logits [K, D, H, W] (what volumeCotangent builds
 * densely) as its entries: M's voxels, found inside the region's bounds when it has them.
 */
function maskCotangent(mask: Float32Array, classId: number, dims: Dims3, region: VolumeRegion): SparseCotangent {
  const [D, H, W] = dims;
  const n = D * H * W;
  const b = regionBounds(region);
  const [lo, hi] = b
    ? [b[0].map((x) => Math.max(0, x)), b[1].map((x, a) => Math.min(dims[a] - 1, x))]
    : [
        [0, 0, 0],
        [D - 1, H - 1, W - 1],
      ];
  const index: number[] = [];
  for (let d = lo[0]; d <= hi[0]; d++)
    for (let h = lo[1]; h <= hi[1]; h++) {
      const row = (d * H + h) * W;
      for (let w = lo[2]; w <= hi[2]; w++) if (mask[row + w] !== 0) index.push(classId * n + row + w);
    }
  return { index: Int32Array.from(index), value: Float32Array.from(index, (i) => mask[i - classId * n]) };
}
