/**
 * The gradient-free CAM methods on volumes: Score-CAM and Ablation-CAM, one channel weight each,
 * for one patch or across the sliding-window patches that touch M.
 *
 * The explained score is the one every volume method explains: S = Σ_p Σ_u c_p[u] · y_p[u] over the
 * patches p that touch M (c_p: the patch's cotangent, region × class one-hot × the blending weight
 * w(u)/W(s_p + u); one patch: c = the region × class one-hot), i.e. S = Σ_M y^c over the blended
 * logits. Patches that do not touch M do not change S, so neither method runs them.
 *
 * Score-CAM (the 2-D definitions of src/methods/score-cam.ts, made 3-D):
 * - the map of channel k on the volume: each touched patch's A_p^k upsampled to the patch
 *   (trilinear; half-pixel centres, PyTorch's align_corners=False, or aligned corners in the
 *   'pytorch-grad-cam' variant), blended over the touched patches with the Gaussian weights of the
 *   logits (one patch: the upsampled map itself), min–max scaled over the voxels they cover:
 *   H_k = (M_k − min) / (max − min + 1e-8);
 * - 'increase' (default): x_k = b + H_k ⊙ (x − b), α_k = S(x_k) − S(b), the `maxChannels` (32)
 *   channels of largest mean activation (over every touched patch's cells), the others α = 0;
 * - 'pytorch-grad-cam': x_k = x ⊙ H_k, every channel, α = softmax_k S(x_k);
 * - S(x_k) is S above with every touched patch cut from the masked volume: one forward per patch
 *   per channel. The baseline b: 'black' = the volume's minimum, 'mean' = each input channel's
 *   mean, or a number (in the model's input units).
 *
 * Ablation-CAM (src/methods/ablation-cam.ts): S_k is S with channel k of the layer set to zero in
 * every touched patch (the model re-run from the modified layer, OnnxVolumeModel.predictReplaced;
 * the skips computed from the patch as usual), w_k = (S − S_k) / S (S − S_k when S = 0), S taken
 * through the same replaced path. One run per patch per channel.
 *
 * The map from the weights: Σ_k α_k A_p^k per patch, blended (explain-sliding.ts), then ReLU.
 */
import { SegGradCamError } from '../errors.js';
import type { MethodOptions } from '../methods/index.js';
import type { OnnxVolumeModel } from './onnx-volume.js';
import type { Dims3 } from './regions.js';
import { cropPatch, gaussianImportance } from './sliding-window.js';

export const GRADIENT_FREE_METHODS = ['score-cam', 'ablation-cam'] as const;
export const isGradientFree = (method: string): boolean => (GRADIENT_FREE_METHODS as readonly string[]).includes(method);

/** A touched patch: where it starts in the volume, its layer's A ([1, C, d, h, w]) and its cotangent over its logits. */
export interface GradientFreePatch {
  start: Dims3;
  activations: Float32Array;
  cotangent: Float32Array;
}

export interface GradientFreeInput {
  model: OnnxVolumeModel;
  /** The layer (a name model.resolve accepts). */
  layer: string;
  /** The volume [C_in, D, H, W] (one patch: the model's input). */
  volume: Float32Array;
  dims: Dims3;
  /** The layer's grid [d, h, w] and channels. */
  layerDims: Dims3;
  channels: number;
  patches: GradientFreePatch[];
  /** σ of the blending weights as a fraction of the patch (1/8). */
  sigmaScale?: number;
}

/** The channel weights of score-cam or ablation-cam (see the module note). */
export async function gradientFreeWeights(method: string, input: GradientFreeInput, options: MethodOptions = {}): Promise<Float32Array> {
  if (input.patches.length === 0) throw new SegGradCamError('the region touches no patch', 'region');
  if (method === 'score-cam') return scoreCamWeights(input, options);
  if (method === 'ablation-cam') return ablationCamWeights(input);
  throw new SegGradCamError(`${method} is not a gradient-free volume method`, 'usage');
}

const patchOf = (model: OnnxVolumeModel): Dims3 => [model.inputDims[2], model.inputDims[3], model.inputDims[4]];

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) s += a[i] * b[i];
  return s;
}

/** Weights of 1-D linear interpolation from n to m samples: per output, [i0, i1, λ]. */
function linearTaps(n: number, m: number, alignCorners: boolean): Array<[number, number, number]> {
  return Array.from({ length: m }, (_, i) => {
    let src = alignCorners ? (m > 1 ? (i * (n - 1)) / (m - 1) : 0) : Math.max((i + 0.5) * (n / m) - 0.5, 0);
    src = Math.min(src, n - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, n - 1);
    return [i0, i1, src - i0];
  });
}

/** Trilinear upsampling of one channel [d, h, w] to [D, H, W] (separable, in float64). */
export function trilinear(x: ArrayLike<number>, from: Dims3, to: Dims3, alignCorners = false): Float64Array {
  const [td, th, tw] = [0, 1, 2].map((i) => linearTaps(from[i], to[i], alignCorners));
  // Along w, then h, then d.
  const a = new Float64Array(from[0] * from[1] * to[2]);
  for (let r = 0; r < from[0] * from[1]; r++)
    for (let w = 0; w < to[2]; w++) {
      const [i0, i1, l] = tw[w];
      a[r * to[2] + w] = (1 - l) * x[r * from[2] + i0] + l * x[r * from[2] + i1];
    }
  const b = new Float64Array(from[0] * to[1] * to[2]);
  for (let d = 0; d < from[0]; d++)
    for (let h = 0; h < to[1]; h++) {
      const [i0, i1, l] = th[h];
      for (let w = 0; w < to[2]; w++)
        b[(d * to[1] + h) * to[2] + w] = (1 - l) * a[(d * from[1] + i0) * to[2] + w] + l * a[(d * from[1] + i1) * to[2] + w];
    }
  const out = new Float64Array(to[0] * to[1] * to[2]);
  const plane = to[1] * to[2];
  for (let d = 0; d < to[0]; d++) {
    const [i0, i1, l] = td[d];
    for (let q = 0; q < plane; q++) out[d * plane + q] = (1 - l) * b[i0 * plane + q] + l * b[i1 * plane + q];
  }
  return out;
}

/** S of a volume: Σ_p c_p · y_p over the touched patches, each cut from `volume`. */
async function scoreOf(input: GradientFreeInput, volume: Float32Array): Promise<number> {
  const { model, dims, patches } = input;
  const patch = patchOf(model);
  let s = 0;
  for (const p of patches) s += dot(p.cotangent, await model.predict(cropPatch(volume, model.inputDims[1], dims, p.start, patch)));
  return s;
}

function baselineVolume(volume: Float32Array, channels: number, baseline: MethodOptions['baseline']): Float32Array {
  const b = baseline ?? 'black';
  if (typeof b === 'number') {
    if (!Number.isFinite(b)) throw new SegGradCamError(`baseline must be a finite number, got ${b}`, 'usage');
    return new Float32Array(volume.length).fill(b);
  }
  if (b === 'black') {
    let lo = Infinity;
    for (const v of volume) lo = Math.min(lo, v);
    return new Float32Array(volume.length).fill(lo);
  }
  if (b === 'mean') {
    const out = new Float32Array(volume.length);
    const n = volume.length / channels;
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let v = 0; v < n; v++) s += volume[c * n + v];
      out.fill(s / n, c * n, (c + 1) * n);
    }
    return out;
  }
  throw new SegGradCamError(`score-cam on volumes takes the baseline black, mean or a number, not '${String(b)}'`, 'usage');
}

async function scoreCamWeights(input: GradientFreeInput, options: MethodOptions): Promise<Float32Array> {
  const { model, dims, patches, layerDims, channels } = input;
  const variant = options.variant ?? 'increase';
  if (variant !== 'increase' && variant !== 'pytorch-grad-cam')
    throw new SegGradCamError(`unknown score-cam variant '${String(variant)}'; expected increase or pytorch-grad-cam`, 'usage');
  const torch = variant === 'pytorch-grad-cam';
  const maxChannels = options.maxChannels ?? (torch ? channels : 32);
  if (!Number.isInteger(maxChannels) || maxChannels < 1)
    throw new SegGradCamError(`maxChannels must be a positive integer, got ${maxChannels}`, 'usage');
  const patch = patchOf(model);
  const inC = model.inputDims[1];
  const n = layerDims[0] * layerDims[1] * layerDims[2];
  const V = dims[0] * dims[1] * dims[2];

  // The channels of largest mean activation over every touched patch's cells (ties: lower index).
  const means = new Float64Array(channels);
  for (const p of patches) for (let k = 0; k < channels; k++) for (let u = 0; u < n; u++) means[k] += p.activations[k * n + u];
  const chosen = Array.from({ length: channels }, (_, k) => k)
    .sort((a, b) => means[b] - means[a] || a - b)
    .slice(0, Math.min(maxChannels, channels));

  // The blending weights over the voxels the touched patches cover.
  const weights = gaussianImportance(patch, input.sigmaScale ?? 1 / 8);
  const den = new Float64Array(V);
  const place = (start: Dims3, f: (v: number, u: number) => void) => {
    let u = 0;
    for (let d = 0; d < patch[0]; d++)
      for (let h = 0; h < patch[1]; h++) {
        const row = ((start[0] + d) * dims[1] + start[1] + h) * dims[2] + start[2];
        for (let w = 0; w < patch[2]; w++, u++) f(row + w, u);
      }
  };
  for (const p of patches) place(p.start, (v, u) => (den[v] += weights[u]));

  const baseline = torch ? new Float32Array(input.volume.length) : baselineVolume(input.volume, inC, options.baseline);
  const sb = torch ? 0 : await scoreOf(input, baseline);
  const scores = new Float64Array(channels);
  const masked = Float32Array.from(baseline);
  for (const k of chosen) {
    const num = new Float64Array(V);
    for (const p of patches) {
      const up = trilinear(p.activations.subarray(k * n, (k + 1) * n), layerDims, patch, torch);
      place(p.start, (v, u) => (num[v] += weights[u] * up[u]));
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (let v = 0; v < V; v++)
      if (den[v] > 0) {
        num[v] /= den[v];
        lo = Math.min(lo, num[v]);
        hi = Math.max(hi, num[v]);
      }
    for (let v = 0; v < V; v++) {
      if (den[v] === 0) continue;
      const h = (num[v] - lo) / (hi - lo + 1e-8);
      for (let c = 0; c < inC; c++) {
        const i = c * V + v;
        masked[i] = baseline[i] + h * (input.volume[i] - baseline[i]);
      }
    }
    scores[k] = (await scoreOf(input, masked)) - sb;
  }
  if (!torch) return Float32Array.from(scores);
  // α = softmax over the chosen channels (float64).
  const out = new Float32Array(channels);
  const top = Math.max(...chosen.map((k) => scores[k]));
  let total = 0;
  for (const k of chosen) total += Math.exp(scores[k] - top);
  for (const k of chosen) out[k] = Math.exp(scores[k] - top) / total;
  return out;
}

async function ablationCamWeights(input: GradientFreeInput): Promise<Float32Array> {
  const { model, dims, patches, layerDims, channels, layer } = input;
  const patch = patchOf(model);
  const n = layerDims[0] * layerDims[1] * layerDims[2];
  const crops = patches.map((p) => cropPatch(input.volume, model.inputDims[1], dims, p.start, patch));
  const replacedScore = async (zeroed: number | null): Promise<number> => {
    let s = 0;
    for (const [i, p] of patches.entries()) {
      let a = p.activations;
      if (zeroed !== null) {
        a = Float32Array.from(a);
        a.fill(0, zeroed * n, (zeroed + 1) * n);
      }
      s += dot(p.cotangent, await model.predictReplaced(crops[i], layer, a));
    }
    return s;
  };
  const s = await replacedScore(null);
  const out = new Float32Array(channels);
  for (let k = 0; k < channels; k++) {
    const sk = await replacedScore(k);
    out[k] = s === 0 ? s - sk : (s - sk) / s;
  }
  return out;
}

/** Σ_k α_k A^k over the cells of A ([C, n]) in float64: the map before the ReLU. */
export function weightedMap(activations: Float32Array, weights: Float32Array, channels: number): Float64Array {
  const n = activations.length / channels;
  const lin = new Float64Array(n);
  for (let k = 0; k < channels; k++) {
    const a = weights[k];
    if (a !== 0) for (let u = 0; u < n; u++) lin[u] += a * activations[k * n + u];
  }
  return lin;
}
