/**
 * Sliding-window inference on volumes larger than the model's patch, as nnU-Net and MONAI do it,
 * and S's exact gradient through the blending.
 *
 * Patches: along each axis, n = ceil((size − patch) / (patch · (1 − overlap))) + 1 windows whose
 * starts are round(i · (size − patch) / (n − 1)) (nnU-Net's compute_steps_for_sliding_window;
 * one window when the axis fits the patch). Each patch's logits y_p are weighted by a Gaussian
 * importance map w (σ = patch/8 per axis, centred on the patch, peak 1) and the blended logits are
 *
 *   Y[k, v] = Σ_p w(v − s_p) · y_p[k, v − s_p] / Σ_p w(v − s_p).
 *
 * S = Σ cot · Y (cot: region mask × class one-hot) is linear in each y_p, so
 * ∂S/∂y_p[k, u] = cot[k, s_p + u] · w(u) / W(s_p + u), W the summed weights: each patch touching
 * M gets that cotangent and one backward run; patches that do not touch M get none.
 */
import { SegGradCamError } from '../errors.js';
import type { OnnxVolumeModel } from './onnx-volume.js';
import type { Dims3 } from './regions.js';

export interface SlidingWindowOptions {
  /** Fraction of the patch shared by neighbouring windows (default 0.5; nnU-Net's tile_step_size is 1 − overlap). */
  overlap?: number;
  /** σ of the importance map as a fraction of the patch size (default 1/8, nnU-Net's and MONAI's). */
  sigmaScale?: number;
  /** Called after each patch's run (predict or gradient): patches done, patches planned. */
  onPatch?: (done: number, total: number, stage: 'predict' | 'gradient') => void;
}

/** Window starts along one axis. */
export function windowStarts(size: number, patch: number, overlap = 0.5): number[] {
  if (!(overlap >= 0 && overlap < 1)) throw new SegGradCamError(`overlap must be in [0, 1), not ${overlap}`, 'usage');
  if (size < patch)
    throw new SegGradCamError(`a volume axis of ${size} is smaller than the patch (${patch}): pad the volume first`, 'shape');
  if (size === patch) return [0];
  const n = Math.ceil((size - patch) / (patch * (1 - overlap))) + 1;
  const step = (size - patch) / (n - 1);
  return Array.from({ length: n }, (_, i) => Math.round(i * step));
}

/** Every patch start (d, h, w), in C order of the starts. */
export function patchStarts(volume: Dims3, patch: Dims3, overlap = 0.5): Dims3[] {
  const [a, b, c] = [0, 1, 2].map((i) => windowStarts(volume[i], patch[i], overlap));
  const out: Dims3[] = [];
  for (const d of a) for (const h of b) for (const w of c) out.push([d, h, w]);
  return out;
}

/**
 * S's cotangent over the blended logits [K, D, H, W] given by its non-zero entries: flat indices k·V + v in
 * ascending order and their values. What a region's cotangent is (M × the class one-hot: |M| entries of a
 * K·V array), so nothing volume-sized is built or scanned per explanation.
 */
export interface SparseCotangent {
  index: Int32Array;
  value: Float32Array;
}

/** The non-zero entries of a dense cotangent, in ascending order. */
export function sparseCotangent(dense: Float32Array): SparseCotangent {
  let count = 0;
  for (let i = 0; i < dense.length; i++) if (dense[i] !== 0) count++;
  const index = new Int32Array(count);
  const value = new Float32Array(count);
  for (let i = 0, j = 0; j < count; i++)
    if (dense[i] !== 0) {
      index[j] = i;
      value[j++] = dense[i];
    }
  return { index, value };
}

/** gaussianImportance, the same map for every explanation of a grid: computed once per patch size and σ (read-only: not to be written). */
const importanceCache = new Map<string, Float32Array>();
export function gaussianImportanceCached(patch: Dims3, sigmaScale: number): Float32Array {
  const key = `${patch.join(',')}:${sigmaScale}`;
  let w = importanceCache.get(key);
  if (!w) {
    if (importanceCache.size >= 4) importanceCache.clear();
    w = gaussianImportance(patch, sigmaScale);
    importanceCache.set(key, w);
  }
  return w;
}

/** The Gaussian importance map of a patch ([d, h, w], C order), peak 1 at the centre (n − 1)/2. */
export function gaussianImportance(patch: Dims3, sigmaScale = 1 / 8): Float32Array {
  const axis = patch.map((n) => {
    const s = n * sigmaScale;
    const c = (n - 1) / 2;
    return Float64Array.from({ length: n }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * s * s)));
  });
  const out = new Float32Array(patch[0] * patch[1] * patch[2]);
  let k = 0;
  for (let d = 0; d < patch[0]; d++)
    for (let h = 0; h < patch[1]; h++) for (let w = 0; w < patch[2]; w++) out[k++] = axis[0][d] * axis[1][h] * axis[2][w];
  return out;
}

/** Copies the patch at `start` out of a [C, D, H, W] volume. */
export function cropPatch(volume: Float32Array, channels: number, dims: Dims3, start: Dims3, patch: Dims3): Float32Array {
  const [, H, W] = dims;
  const [pd, ph, pw] = patch;
  const out = new Float32Array(channels * pd * ph * pw);
  let k = 0;
  for (let c = 0; c < channels; c++)
    for (let d = 0; d < pd; d++)
      for (let h = 0; h < ph; h++) {
        const o = ((c * dims[0] + start[0] + d) * H + start[1] + h) * W + start[2];
        out.set(volume.subarray(o, o + pw), k);
        k += pw;
      }
  return out;
}

interface Plan {
  channels: number;
  classes: number;
  patch: Dims3;
  starts: Dims3[];
  /** The importance map (cached: not to be written). */
  weights: Float32Array;
  /** Σ_p w(v − s_p) per voxel of the volume. */
  total: Float64Array;
}

/** The patches and weights; `withTotal` false leaves `total` empty (a gradient computes W only where the cotangent is non-zero). */
function plan(model: OnnxVolumeModel, volume: Float32Array, dims: Dims3, options: SlidingWindowOptions, withTotal = true): Plan {
  const [, channels, pd, ph, pw] = model.inputDims;
  const [, classes, od, oh, ow] = model.logitsDims;
  if (od !== pd || oh !== ph || ow !== pw)
    throw new SegGradCamError(
      `sliding windows need logits at the input's resolution; the model maps [${pd}, ${ph}, ${pw}] to [${od}, ${oh}, ${ow}]`,
      'model',
    );
  const patch: Dims3 = [pd, ph, pw];
  const n = dims[0] * dims[1] * dims[2];
  if (volume.length !== channels * n)
    throw new SegGradCamError(`a ${channels}-channel ${dims.join('x')} volume has ${channels * n} values, not ${volume.length}`, 'shape');
  const starts = patchStarts(dims, patch, options.overlap ?? 0.5);
  const weights = gaussianImportanceCached(patch, options.sigmaScale ?? 1 / 8);
  const total = new Float64Array(withTotal ? n : 0);
  if (withTotal) for (const s of starts) forPatch(dims, s, patch, (v, u) => (total[v] += weights[u]));
  return { channels, classes, patch, starts, weights, total };
}

/** Calls f(volume index, patch index) for every voxel of a patch. */
function forPatch(dims: Dims3, start: Dims3, patch: Dims3, f: (v: number, u: number) => void) {
  let u = 0;
  for (let d = 0; d < patch[0]; d++)
    for (let h = 0; h < patch[1]; h++) {
      const row = ((start[0] + d) * dims[1] + start[1] + h) * dims[2] + start[2];
      for (let w = 0; w < patch[2]; w++) f(row + w, u++);
    }
}

/** Whether the patch at `start` covers a non-zero voxel of `mask` ([D, H, W]). */
function patchTouches(mask: Float32Array, dims: Dims3, start: Dims3, patch: Dims3): boolean {
  for (let d = 0; d < patch[0]; d++)
    for (let h = 0; h < patch[1]; h++) {
      const row = ((start[0] + d) * dims[1] + start[1] + h) * dims[2] + start[2];
      for (let w = 0; w < patch[2]; w++) if (mask[row + w] !== 0) return true;
    }
  return false;
}

/**
 * Blended logits [K, D, H, W] of a [C, D, H, W] volume. With `only` (a [D, H, W] mask), just the
 * patches covering one of its voxels run: the logits are then exact on the mask's voxels (every patch
 * that covers such a voxel is run, and the blend divides by the weights of all patches) and partial
 * elsewhere — what the class of a region needs (`skipped` counts the patches not run).
 */
export async function predictSlidingWindow(
  model: OnnxVolumeModel,
  volume: Float32Array,
  dims: Dims3,
  options: SlidingWindowOptions & { only?: Float32Array } = {},
): Promise<{ logits: Float32Array; starts: Dims3[]; skipped: number }> {
  const p = plan(model, volume, dims, options);
  const n = dims[0] * dims[1] * dims[2];
  const m = p.patch[0] * p.patch[1] * p.patch[2];
  if (options.only && options.only.length !== n)
    throw new SegGradCamError(`a mask of ${options.only.length} voxels does not fit the ${dims.join('x')} volume`, 'shape');
  const acc = new Float64Array(p.classes * n);
  let done = 0;
  let skipped = 0;
  for (const s of p.starts) {
    if (options.only && !patchTouches(options.only, dims, s, p.patch)) {
      skipped++;
      options.onPatch?.(++done, p.starts.length, 'predict');
      continue;
    }
    const y = await model.predict(cropPatch(volume, p.channels, dims, s, p.patch));
    for (let k = 0; k < p.classes; k++) forPatch(dims, s, p.patch, (v, u) => (acc[k * n + v] += p.weights[u] * y[k * m + u]));
    options.onPatch?.(++done, p.starts.length, 'predict');
  }
  const logits = new Float32Array(p.classes * n);
  for (let k = 0; k < p.classes; k++) for (let v = 0; v < n; v++) logits[k * n + v] = acc[k * n + v] / p.total[v];
  return { logits, starts: p.starts, skipped };
}

export interface PatchGradient {
  start: Dims3;
  /** A and ∂S/∂A of this patch at the layer ([1, C, d, h, w]). */
  activations: Float32Array;
  gradients: Float32Array;
  shape: number[];
  /** The patch's logits [1, K, pd, ph, pw] and the cotangent it was given (S = Σ_p Σ cotangent · logits). */
  logits?: Float32Array;
  cotangent?: Float32Array;
  /** The indices of the cotangent's non-zero entries, ascending (S's terms without a pass over the zeros). */
  entries?: Int32Array;
}

/** This patch's part of S = Σ cotangent · logits (summed in index order; 0 without logits or cotangent). */
export function patchScore(p: PatchGradient): number {
  let s = 0;
  const { logits, cotangent, entries } = p;
  if (!logits || !cotangent) return s;
  if (entries) for (let j = 0; j < entries.length; j++) s += cotangent[entries[j]] * logits[entries[j]];
  else for (let i = 0; i < cotangent.length; i++) s += cotangent[i] * logits[i];
  return s;
}

/**
 * For S = Σ cot · Y over the blended logits (cot [K, D, H, W]: region mask × class one-hot, dense or as
 * its non-zero entries), every patch touching M with its layer's A and ∂S/∂A (one fused run each, the
 * patch cotangent carrying the blending weights); `skipped` counts the patches that do not touch M (no
 * run at all). Only M's entries are visited: W = Σ_p w is computed at M's voxels, not over the volume.
 */
export async function slidingWindowGradient(
  model: OnnxVolumeModel,
  volume: Float32Array,
  dims: Dims3,
  layer: string,
  cotangent: Float32Array | SparseCotangent,
  options: SlidingWindowOptions = {},
): Promise<{ patches: PatchGradient[]; skipped: number; starts: Dims3[] }> {
  const p = plan(model, volume, dims, options, false);
  const n = dims[0] * dims[1] * dims[2];
  if (ArrayBuffer.isView(cotangent) && cotangent.length !== p.classes * n)
    throw new SegGradCamError(`the cotangent has ${cotangent.length} values, the blended logits ${p.classes * n}`, 'shape');
  const { index, value } = ArrayBuffer.isView(cotangent) ? sparseCotangent(cotangent) : cotangent;
  if (index.length !== value.length) throw new SegGradCamError('a sparse cotangent needs one value per index', 'shape');
  for (let j = 0; j < index.length; j++)
    if (!(index[j] >= 0 && index[j] < p.classes * n) || (j > 0 && index[j] <= index[j - 1]))
      throw new SegGradCamError(`a sparse cotangent's indices must rise within 0..${p.classes * n - 1}`, 'shape');
  const m = p.patch[0] * p.patch[1] * p.patch[2];
  const [, H, W] = dims;
  // The non-zero entries of the cotangent (M is usually small next to the volume), their voxels, and W there:
  // Σ_p w over the patches covering the voxel, summed in the order of the starts (as the prediction's blend does).
  const at = Array.from(index, (i) => {
    const v = i % n;
    return [Math.floor(v / (H * W)), Math.floor(v / W) % H, v % W];
  });
  const inside = (s: Dims3, [d, h, w]: number[]) =>
    d >= s[0] && d < s[0] + p.patch[0] && h >= s[1] && h < s[1] + p.patch[1] && w >= s[2] && w < s[2] + p.patch[2];
  const local = (s: Dims3, [d, h, w]: number[]) => ((d - s[0]) * p.patch[1] + h - s[1]) * p.patch[2] + w - s[2];
  const total = at.map((x) => {
    let t = 0;
    for (const s of p.starts) if (inside(s, x)) t += p.weights[local(s, x)];
    return t;
  });
  // M's bounding box: a patch that misses it has no entry to look for.
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (const x of at)
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], x[a]);
      hi[a] = Math.max(hi[a], x[a]);
    }
  const meets = (s: Dims3) => [0, 1, 2].every((a) => s[a] <= hi[a] && s[a] + p.patch[a] > lo[a]);
  const patches: PatchGradient[] = [];
  let skipped = 0;
  let done = 0;
  for (const s of p.starts) {
    let c: Float32Array | null = null;
    const used: number[] = [];
    if (meets(s))
      for (let j = 0; j < index.length; j++) {
        if (!inside(s, at[j])) continue;
        c ??= new Float32Array(p.classes * m);
        const u = local(s, at[j]);
        const k = Math.floor(index[j] / n);
        c[k * m + u] = (value[j] * p.weights[u]) / total[j];
        used.push(k * m + u);
      }
    if (!c) {
      skipped++;
      options.onPatch?.(++done, p.starts.length, 'gradient');
      continue;
    }
    const r = await model.gradient(cropPatch(volume, p.channels, dims, s, p.patch), layer, c);
    patches.push({
      start: s,
      activations: r.activations,
      gradients: r.gradients,
      shape: r.shape,
      logits: r.logits,
      cotangent: c,
      entries: Int32Array.from(used),
    });
    options.onPatch?.(++done, p.starts.length, 'gradient');
  }
  return { patches, skipped, starts: p.starts };
}

/** ∂S/∂x on the whole volume ([C, D, H, W]) from the patches' input gradients (layer 'input'): their sum, each placed at its start. */
export function assembleInputGradient(patches: PatchGradient[], channels: number, dims: Dims3): Float32Array {
  const n = dims[0] * dims[1] * dims[2];
  const out = new Float32Array(channels * n);
  for (const p of patches) {
    const patch: Dims3 = [p.shape[2], p.shape[3], p.shape[4]];
    const m = patch[0] * patch[1] * patch[2];
    for (let c = 0; c < channels; c++) forPatch(dims, p.start, patch, (v, u) => (out[c * n + v] += p.gradients[c * m + u]));
  }
  return out;
}
