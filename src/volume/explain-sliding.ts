/**
 * Seg-Grad-CAM on a volume larger than the model's patch (sliding windows, ./sliding-window.ts).
 *
 * α across patches — the choice: ONE α for the whole explanation, the mean of ∂S/∂A^k over every
 * layer cell of every patch that touches M (P patches of n cells each):
 *
 *   α_k = (1 / (P · n)) Σ_p Σ_u ∂S/∂A_p^k[u]   (= the mean of the per-patch α_p),
 *
 * so S's gradient, which the blending splits between overlapping patches, is counted once in
 * total, and one channel weighting explains M. With M inside one patch's reach (P = 1) this is
 * the single-patch α. The CAM: each touched patch's Σ_k α_k A_p^k is brought to the patch's
 * voxels (nearest: a layer cell covers patch/layer voxels per axis), blended over the touched
 * patches with the same Gaussian weights as the logits, then ReLU. Voxels no touched patch
 * covers get 0.
 *
 * The blend: ./blend-cam.ts (on the touched patches' bounding box only, bit-identical to a blend
 * over the whole volume).
 *
 * Other methods (options.method, src/volume/methods.ts) follow the same rule: the method sees the
 * cells of every touched patch side by side as one set of positions (for Seg-Grad-CAM that is the
 * α above), its map before the ReLU is blended as above, then ReLU.
 */
import { SegGradCamError } from '../errors.js';
import type { MethodOptions } from '../methods/index.js';
import { blendPatchMaps } from './blend-cam.js';
import { gradientFreeWeights, isGradientFree, weightedMap } from './gradient-free.js';
import { checkVolumeMethod, volumeCam } from './methods.js';
import type { OnnxVolumeModel } from './onnx-volume.js';
import type { Dims3 } from './regions.js';
import {
  gaussianImportanceCached,
  patchScore,
  slidingWindowGradient,
  type SlidingWindowOptions,
  type SparseCotangent,
} from './sliding-window.js';

export interface SlidingExplanation {
  /** [C] */
  alpha: Float32Array;
  /** ReLU of the blended Σ_k α_k A^k on the volume grid [D, H, W]. */
  cam: Float32Array;
  /** Per touched patch: its start and its own α_p. */
  patches: Array<{ start: Dims3; alpha: Float32Array }>;
  /** Patches that do not touch M (no backward run). */
  skipped: number;
  /** The method's channel weights (= alpha), null for methods without them (alpha is then empty). */
  weights?: Float32Array | null;
  /** S = Σ cot · Y over the blended logits, from the touched patches (the only ones that cover M). */
  score?: number;
  /** The box of the volume the touched patches cover (start, size [d, h, w]): `cam` is 0 outside it. */
  extent?: { start: Dims3; size: Dims3 };
}

export interface SlidingExplainOptions extends SlidingWindowOptions {
  /** A method of VOLUME_METHODS (default seg-grad-cam). */
  method?: string;
  methodOptions?: MethodOptions;
}

export async function explainSlidingWindow(
  model: OnnxVolumeModel,
  volume: Float32Array,
  dims: Dims3,
  layer: string,
  cotangent: Float32Array | SparseCotangent,
  options: SlidingExplainOptions = {},
): Promise<SlidingExplanation> {
  const method = checkVolumeMethod(options.method ?? 'seg-grad-cam');
  const r = await slidingWindowGradient(model, volume, dims, layer, cotangent, options);
  if (r.patches.length === 0) throw new SegGradCamError('the region touches no patch', 'region');
  const shape = r.patches[0].shape;
  const [, ch, ld, lh, lw] = shape;
  const n = ld * lh * lw;
  const patch: Dims3 = [model.inputDims[2], model.inputDims[3], model.inputDims[4]];
  if (patch[0] % ld || patch[1] % lh || patch[2] % lw)
    throw new SegGradCamError(`the layer's grid [${ld}, ${lh}, ${lw}] does not divide the patch [${patch.join(', ')}]`, 'layer');
  const perPatch = r.patches.map((p) => {
    const a = new Float32Array(ch);
    for (let k = 0; k < ch; k++) {
      let s = 0;
      for (let u = 0; u < n; u++) s += p.gradients[k * n + u];
      a[k] = s / n;
    }
    return a;
  });
  let score = 0;
  for (const p of r.patches) score += patchScore(p);
  let alpha = new Float32Array(ch);
  for (let k = 0; k < ch; k++) alpha[k] = perPatch.reduce((s, a) => s + a[k], 0) / perPatch.length;
  let methodWeights: Float32Array | null = alpha;
  // Other methods: every touched patch's cells side by side ([C, P·n]), one method run.
  let cellMaps: Float64Array[] | null = null;
  if (isGradientFree(method)) {
    const w = await gradientFreeWeights(
      method,
      {
        model,
        layer,
        volume,
        dims,
        layerDims: [ld, lh, lw],
        channels: ch,
        patches: r.patches.map((p) => ({ start: p.start, activations: p.activations, cotangent: p.cotangent as Float32Array })),
        sigmaScale: options.sigmaScale,
      },
      options.methodOptions,
    );
    const sign = options.methodOptions?.negative ? -1 : 1;
    cellMaps = r.patches.map((p) => weightedMap(p.activations, w, ch).map((x) => sign * x));
    methodWeights = w;
    alpha = Float32Array.from(w);
  } else if (method !== 'seg-grad-cam' || options.methodOptions?.negative) {
    const P = r.patches.length;
    const a = new Float32Array(ch * P * n);
    const g = new Float32Array(ch * P * n);
    r.patches.forEach((p, i) => {
      for (let k = 0; k < ch; k++) {
        a.set(p.activations.subarray(k * n, (k + 1) * n), (k * P + i) * n);
        g.set(p.gradients.subarray(k * n, (k + 1) * n), (k * P + i) * n);
      }
    });
    const m = volumeCam(method, options.methodOptions ?? {}, a, g, ch);
    const map = options.methodOptions?.negative ? Float32Array.from(m.linear, (x) => -x) : m.linear;
    cellMaps = r.patches.map((_, i) => Float64Array.from(map.subarray(i * n, (i + 1) * n)));
    methodWeights = m.weights;
    alpha = m.weights ? Float32Array.from(m.weights) : new Float32Array(0);
  }

  const maps = r.patches.map((p, i) => {
    let lin = cellMaps?.[i];
    if (!lin) {
      lin = new Float64Array(n);
      for (let k = 0; k < ch; k++) for (let u = 0; u < n; u++) lin[u] += alpha[k] * p.activations[k * n + u];
    }
    return lin;
  });
  const weights = gaussianImportanceCached(patch, options.sigmaScale ?? 1 / 8);
  const { cam, extent } = blendPatchMaps(
    maps,
    r.patches.map((p) => p.start),
    [ld, lh, lw],
    patch,
    weights,
    dims,
  );
  return {
    alpha,
    cam,
    patches: r.patches.map((p, i) => ({ start: p.start, alpha: perPatch[i] })),
    skipped: r.skipped,
    weights: methodWeights,
    score,
    extent,
  };
}
