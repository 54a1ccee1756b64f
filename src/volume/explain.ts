/**
 * Seg-Grad-CAM on a volume model: S = Σ_{v∈M} y^c_v over the logits, α_k = the mean of ∂S/∂A^k
 * over the layer's d·h·w voxels, CAM = ReLU(Σ_k α_k A^k) on the layer's [d, h, w] grid. One
 * fused ONNX Runtime run gives the logits, A and ∂S/∂A (a predict run comes first when the class
 * or the region depends on the prediction).
 */
import { SegGradCamError } from '../errors.js';
import type { OnnxVolumeModel } from './onnx-volume.js';
import { volumeRegionMask, type Dims3, type VolumeRegion } from './regions.js';

export interface VolumeExplainOptions {
  region: VolumeRegion;
  /** Default: the class with the largest summed logit over M (for one voxel: its predicted class). */
  classId?: number;
  /** A layer of model.layers() (default: the last layer before the logits with the smallest grid, the bottleneck). */
  layer?: string;
}

export interface VolumeExplanation {
  layer: string;
  classId: number;
  score: number;
  /** [C] */
  alpha: Float32Array;
  /** ReLU(Σ α_k A^k), [d, h, w] of the layer, not normalised. */
  cam: Float32Array;
  /** Σ α_k A^k before the ReLU. */
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

export async function explainVolume(
  model: OnnxVolumeModel,
  input: Float32Array,
  options: VolumeExplainOptions,
): Promise<VolumeExplanation> {
  const layer = options.layer ?? defaultVolumeLayer(model);
  model.resolve(layer);
  const [, k, d, h, w] = model.logitsDims;
  const [, , D, H, W] = model.inputDims;
  const n = d * h * w;
  const kind = options.region.kind;
  const needsPrediction = options.classId == null || kind === 'class' || kind === 'component';
  let classId = options.classId;
  if (classId != null && (!Number.isInteger(classId) || classId < 0 || classId >= k))
    throw new SegGradCamError(`class ${classId} is not one of the model's ${k} classes (0..${k - 1})`, 'class');
  let mask: Float32Array;
  if (needsPrediction) {
    const logits = await model.predict(input);
    const labels = argmaxLabels(logits, k);
    if (classId == null) {
      // The class of the region: for the label-based kinds, the prediction at their voxel or M's logits.
      const seedMask =
        kind === 'component'
          ? volumeRegionMask({ kind: 'voxel', voxel: options.region.voxel }, { inputDims: [D, H, W], outputDims: [d, h, w] })
          : kind === 'class'
            ? null
            : volumeRegionMask(options.region, { inputDims: [D, H, W], outputDims: [d, h, w] });
      if (!seedMask) throw new SegGradCamError("a 'class' region needs the class (classId)", 'class');
      let best = -Infinity;
      for (let c = 0; c < k; c++) {
        let s = 0;
        for (let v = 0; v < n; v++) if (seedMask[v] !== 0) s += logits[c * n + v];
        if (s > best) {
          best = s;
          classId = c;
        }
      }
    }
    mask = volumeRegionMask(options.region, { inputDims: [D, H, W], outputDims: [d, h, w], labels, classIndex: classId });
  } else mask = volumeRegionMask(options.region, { inputDims: [D, H, W], outputDims: [d, h, w] });
  const c = classId as number;
  const cotangent = new Float32Array(k * n);
  cotangent.set(mask, c * n);
  const g = await model.gradient(input, layer, cotangent);
  let score = 0;
  for (let v = 0; v < n; v++) if (mask[v] !== 0) score += g.logits[c * n + v];
  const { alpha, cam, camLinear } = gradCam3d(g.activations, g.gradients, g.shape);
  return { layer, classId: c, score, alpha, cam, camLinear, camDims: [g.shape[2], g.shape[3], g.shape[4]], mask, logits: g.logits };
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
