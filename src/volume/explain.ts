/**
 * Seg-Grad-CAM on a volume model: S = Σ_{v∈M} y^c_v over the logits, α_k = the mean of ∂S/∂A^k
 * over the layer's d·h·w voxels, CAM = ReLU(Σ_k α_k A^k) on the layer's [d, h, w] grid. One
 * fused ONNX Runtime run gives the logits, A and ∂S/∂A (a predict run comes first when the class
 * or the region depends on the prediction).
 */
import { SegGradCamError } from '../errors.js';
import type { MethodOptions } from '../methods/index.js';
import { gradientFreeWeights, isGradientFree, weightedMap } from './gradient-free.js';
import { inputAttributionMap, isInputMethod } from './input-attribution.js';
import { checkVolumeMethod, finerCotangent, volumeCam } from './methods.js';
import type { OnnxVolumeModel } from './onnx-volume.js';
import { volumeRegionMask, type Dims3, type VolumeRegion } from './regions.js';

export interface VolumeExplainOptions {
  region: VolumeRegion;
  /** Default: the class with the largest summed logit over M (for one voxel: its predicted class). */
  classId?: number;
  /** A layer of model.layers() (default: the last layer before the logits with the smallest grid, the bottleneck). */
  layer?: string;
  /** A method of VOLUME_METHODS (default 'seg-grad-cam'; src/volume/methods.ts). */
  method?: string;
  /** The method's options (negative, kernel, gamma, sigmas, comparisons, finerAlpha). */
  methodOptions?: MethodOptions;
}

export interface VolumeExplanation {
  layer: string;
  /** The method that made the map. */
  method: string;
  classId: number;
  score: number;
  /** [C]: the channel weights (Seg-Grad-CAM's α; an empty array for methods without channel weights). */
  alpha: Float32Array;
  /** The channel weights, null for methods without them (hires-cam, layer-cam, kpca-cam). */
  weights: Float32Array | null;
  /** ReLU(Σ α_k A^k) (or the method's map), [d, h, w] of the layer, not normalised. */
  cam: Float32Array;
  /** Σ α_k A^k before the ReLU (other methods: their map before the ReLU, see VolumeCamResult.linear). */
  camLinear: Float32Array;
  camDims: Dims3;
  /** M on the logits grid. */
  mask: Float32Array;
  /** The logits [1, K, d, h, w]. */
  logits: Float32Array;
}

/** The class per voxel of logits [1, K, d, h, w] (the first of ties). */
export function argmaxLabels(logits: Float32Array, k: number): Int32Array {
  const n = logits.length / k;
  const labels = new Int32Array(n);
  for (let v = 0; v < n; v++) {
    let best = logits[v];
    for (let c = 1; c < k; c++) {
      const y = logits[c * n + v];
      if (y > best) {
        best = y;
        labels[v] = c;
      }
    }
  }
  return labels;
}

/** The default layer: the smallest grid (by voxels), the last such in execution order. */
export function defaultVolumeLayer(model: OnnxVolumeModel): string {
  const layers = model.layers().filter((l) => l.name !== model.logitsName);
  if (layers.length === 0) throw new SegGradCamError('the model has no volume layer before its logits', 'layer');
  let best = layers[0];
  for (const l of layers) if (l.shape[2] * l.shape[3] * l.shape[4] <= best.shape[2] * best.shape[3] * best.shape[4]) best = l;
  return best.name;
}

/**
 * M on the logits grid and the class: the class given, or the one with the largest summed logit
 * over M (for 'component', over its seed voxel). `logits` ([1, K, d, h, w]) is needed when the class
 * is not given or the region depends on the prediction ('class', 'component'); null otherwise.
 */
export function resolveVolumeRegion(
  region: VolumeRegion,
  classId: number | undefined,
  logits: Float32Array | null,
  k: number,
  inputDims: Dims3,
  outputDims: Dims3,
): { mask: Float32Array; classId: number } {
  if (classId != null && (!Number.isInteger(classId) || classId < 0 || classId >= k))
    throw new SegGradCamError(`class ${classId} is not one of the model's ${k} classes (0..${k - 1})`, 'class');
  const kind = region.kind;
  const ctx = { inputDims, outputDims };
  if (!logits) {
    if (classId == null || kind === 'class' || kind === 'component')
      throw new SegGradCamError(`a '${kind}' region needs the prediction`, 'region');
    return { mask: volumeRegionMask(region, ctx), classId };
  }
  const n = outputDims[0] * outputDims[1] * outputDims[2];
  const labels = argmaxLabels(logits, k);
  let c = classId;
  if (c == null) {
    // The class of the region: for the label-based kinds, the prediction at their voxel or M's logits.
    const seedMask =
      kind === 'component'
        ? volumeRegionMask({ kind: 'voxel', voxel: region.voxel }, ctx)
        : kind === 'class'
          ? null
          : volumeRegionMask(region, ctx);
    if (!seedMask) throw new SegGradCamError("a 'class' region needs the class (classId)", 'class');
    let best = -Infinity;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let v = 0; v < n; v++) if (seedMask[v] !== 0) s += logits[j * n + v];
      if (s > best) {
        best = s;
        c = j;
      }
    }
  }
  return { mask: volumeRegionMask(region, { ...ctx, labels, classIndex: c }), classId: c as number };
}

/** Whether the class or M (or the method's objective) needs a prediction before the gradient run. */
export const needsVolumePrediction = (options: VolumeExplainOptions): boolean =>
  options.classId == null || options.region.kind === 'class' || options.region.kind === 'component' || options.method === 'finer-cam';

/** The cotangent over logits [1, K, n] of S: M × the class one-hot, or the Finer-CAM objective. */
export function volumeCotangent(
  options: VolumeExplainOptions,
  mask: Float32Array,
  classId: number,
  k: number,
  logits: Float32Array | null,
): Float32Array {
  const n = mask.length;
  if (options.method === 'finer-cam') {
    if (!logits) throw new SegGradCamError('finer-cam needs the prediction', 'usage');
    const o = options.methodOptions ?? {};
    return finerCotangent(logits, k, mask, classId, o.comparisons ?? 3, o.finerAlpha ?? 1).cotangent;
  }
  const cotangent = new Float32Array(k * n);
  cotangent.set(mask, classId * n);
  return cotangent;
}

export async function explainVolume(
  model: OnnxVolumeModel,
  input: Float32Array,
  options: VolumeExplainOptions,
): Promise<VolumeExplanation> {
  const method = checkVolumeMethod(options.method ?? 'seg-grad-cam');
  // Input attributions explain at the model input, whatever the layer option.
  const layer = isInputMethod(method) ? 'input' : (options.layer ?? defaultVolumeLayer(model));
  model.resolve(layer);
  const [, k, d, h, w] = model.logitsDims;
  const [, , D, H, W] = model.inputDims;
  if (options.classId != null && (!Number.isInteger(options.classId) || options.classId < 0 || options.classId >= k))
    throw new SegGradCamError(`class ${options.classId} is not one of the model's ${k} classes (0..${k - 1})`, 'class');
  const logits0 = needsVolumePrediction(options) ? await model.predict(input) : null;
  const { mask, classId: c } = resolveVolumeRegion(options.region, options.classId, logits0, k, [D, H, W], [d, h, w]);
  const cotangent = volumeCotangent(options, mask, c, k, logits0);
  const g = await model.gradient(input, layer, cotangent);
  let score = 0;
  for (let i = 0; i < cotangent.length; i++) if (cotangent[i] !== 0) score += cotangent[i] * g.logits[i];
  const camDims: Dims3 = [g.shape[2], g.shape[3], g.shape[4]];
  if (isInputMethod(method)) {
    const r = inputAttributionMap(method, input, g.gradients, g.shape[1], options.methodOptions?.negative);
    const none = new Float32Array(0);
    return {
      layer,
      method,
      classId: c,
      score,
      alpha: none,
      weights: null,
      cam: r.cam,
      camLinear: r.linear,
      camDims,
      mask,
      logits: g.logits,
    };
  }
  if (isGradientFree(method)) {
    const weights = await gradientFreeWeights(
      method,
      {
        model,
        layer,
        volume: input,
        dims: [D, H, W],
        layerDims: camDims,
        channels: g.shape[1],
        patches: [{ start: [0, 0, 0], activations: g.activations, cotangent }],
      },
      options.methodOptions,
    );
    const lin = weightedMap(g.activations, weights, g.shape[1]);
    const sign = options.methodOptions?.negative ? -1 : 1;
    const cam = Float32Array.from(lin, (x) => Math.max(sign * x, 0));
    return {
      layer,
      method,
      classId: c,
      score,
      alpha: weights,
      weights,
      cam,
      camLinear: Float32Array.from(lin),
      camDims,
      mask,
      logits: g.logits,
    };
  }
  if (method === 'seg-grad-cam' && !options.methodOptions?.negative) {
    const { alpha, cam, camLinear } = gradCam3d(g.activations, g.gradients, g.shape);
    return { layer, method, classId: c, score, alpha, weights: alpha, cam, camLinear, camDims, mask, logits: g.logits };
  }
  const r = volumeCam(method, options.methodOptions ?? {}, g.activations, g.gradients, g.shape[1]);
  return {
    layer,
    method,
    classId: c,
    score,
    alpha: r.weights ?? new Float32Array(0),
    weights: r.weights,
    cam: r.cam,
    camLinear: r.linear,
    camDims,
    mask,
    logits: g.logits,
  };
}

/** α (the mean of ∂S/∂A^k over d·h·w, in float64) and the CAM from A and ∂S/∂A [1, C, d, h, w]. */
export function gradCam3d(
  a: Float32Array,
  g: Float32Array,
  shape: number[],
): { alpha: Float32Array; cam: Float32Array; camLinear: Float32Array } {
  const [, ch, d, h, w] = shape;
  const n = d * h * w;
  const alpha = new Float32Array(ch);
  for (let k = 0; k < ch; k++) {
    let s = 0;
    for (let v = 0; v < n; v++) s += g[k * n + v];
    alpha[k] = s / n;
  }
  const lin = new Float64Array(n);
  for (let k = 0; k < ch; k++) for (let v = 0; v < n; v++) lin[v] += alpha[k] * a[k * n + v];
  return { alpha, cam: Float32Array.from(lin, (x) => Math.max(x, 0)), camLinear: Float32Array.from(lin) };
}

/**
 * A layer-grid CAM [d, h, w] on the volume grid [D, H, W] (nearest: each layer cell covers
 * D/d × H/h × W/w voxels; the sizes must divide, as they do in U-Nets).
 */
export function camOnVolume(cam: Float32Array, camDims: Dims3, volumeDims: Dims3): Float32Array {
  const f = volumeDims.map((n, i) => n / camDims[i]);
  if (f.some((x) => !Number.isInteger(x)))
    throw new SegGradCamError(`the CAM grid [${camDims.join(', ')}] does not divide the volume [${volumeDims.join(', ')}]`, 'shape');
  const [D, H, W] = volumeDims;
  const out = new Float32Array(D * H * W);
  let k = 0;
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        out[k++] = cam[(Math.floor(d / f[0]) * camDims[1] + Math.floor(h / f[1])) * camDims[2] + Math.floor(w / f[2])];
  return out;
}
