/**
 * The CAM-family methods on volume layers. A 3-D layer's A and ∂S/∂A ([1, C, d, h, w], channels
 * first) are laid out as the 2-D methods' [1, N, 1, C] (N = d·h·w positions, channels last) and
 * given to the 2-D method modules unchanged. That is exact for every method whose definition only
 * sums, averages, thresholds or projects over the set of positions and never looks at
 * neighbours — which is all of those listed in VOLUME_METHODS:
 *
 * - Seg-Grad-CAM (α = mean over d·h·w), XGrad-CAM and Grad-CAM++ (sums over positions),
 *   HiResCAM and LayerCAM (element-wise), FEM (per-channel moments over positions);
 * - Eigen-CAM, Seg-Eigen-CAM, Eigen-Grad-CAM and KPCA-CAM (rows of the matrix = positions: a
 *   principal component does not depend on the order of the rows);
 * - Finer-CAM: Seg-Grad-CAM on the Finer objective, built here as a cotangent over the logits.
 *
 * Score-CAM and Ablation-CAM need forward runs of the model, not just A and ∂S/∂A: their weights
 * come from ./gradient-free.ts, and volumeCam refuses them.
 *
 * The other methods are refused with a typed error (VOLUME_REFUSED says why).
 *
 * Seg-Grad-CAM keeps its float64 path (gradCam3d); the others run in TF.js (float32).
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { createMethod, hasNegativeMap, isModelMethod, type MethodOptions } from '../methods/index.js';

/** The methods that run on volumes, each exact under the positions layout (see the module note). */
export const VOLUME_METHODS = [
  'seg-grad-cam',
  'hires-cam',
  'grad-cam++',
  'xgrad-cam',
  'layer-cam',
  'eigen-cam',
  'seg-eigen-cam',
  'eigen-grad-cam',
  'kpca-cam',
  'fem',
  'finer-cam',
  'score-cam',
  'ablation-cam',
  'saliency',
  'gradient-x-input',
] as const;

export type VolumeMethodName = (typeof VOLUME_METHODS)[number];

/** The methods volumeCam computes from A and ∂S/∂A alone (the others run the model, or explain at the input). */
export const VOLUME_LAYER_METHODS: readonly VolumeMethodName[] = VOLUME_METHODS.filter(
  (m) => m !== 'score-cam' && m !== 'ablation-cam' && m !== 'saliency' && m !== 'gradient-x-input',
);

/** Methods of the 2-D registry that volumes refuse, and why. */
export const VOLUME_REFUSED: Readonly<Record<string, string>> = {
  cam: 'it needs a global-average-pool + linear classifier head; volume models are segmentation networks',
  smoothgrad: 'its noisy copies of the volume (one sliding-window pass each) are not built for volumes; saliency and gradient-x-input are',
  'integrated-gradients':
    'its scaled copies of the volume (one sliding-window pass each) are not built for volumes; saliency and gradient-x-input are',
  'grid-saliency': 'it optimises a 2-D mask',
  lrp: 'the LRP rules run on the 2-D engines only',
  occlusion: 'its windows are 2-D',
  rise: 'its masks are 2-D',
};

/** Throws a typed 'usage' error unless the method runs on volumes. */
export function checkVolumeMethod(name: string): VolumeMethodName {
  if ((VOLUME_METHODS as readonly string[]).includes(name)) return name as VolumeMethodName;
  const why = VOLUME_REFUSED[name];
  if (why) throw new SegGradCamError(`${name} does not run on volumes: ${why}; volume methods: ${VOLUME_METHODS.join(', ')}`, 'usage');
  throw new SegGradCamError(`unknown method '${name}'; volume methods: ${VOLUME_METHODS.join(', ')}`, 'usage');
}

export interface VolumeCamResult {
  /** The map over the N positions (after ReLU; the negative map with `negative`). */
  cam: Float32Array;
  /**
   * The map before the ReLU: Σ_k α_k A^k (or Σ_k W^k ⊙ A^k, or the signed projection) for methods
   * with a negative map — there it equals ReLU(x) − ReLU(−x); for gradient-free maps without one
   * (eigen-cam, kpca-cam, fem) it is the map itself.
   */
  linear: Float32Array;
  /** Channel weights α [C] where the method has them (null for element-wise methods and KPCA-CAM). */
  weights: Float32Array | null;
}

/** [C, N] channels-first rows (any leading 1) → [N, C] channels last. */
function channelsLast(x: Float32Array, channels: number, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < channels; k++) for (let u = 0; u < n; u++) out[u * channels + k] = x[k * n + u];
  return out;
}

/**
 * A CAM method over N positions of C channels: `activations` and `gradients` channels first ([C, N],
 * e.g. one layer's [1, C, d, h, w], or several patches' cells side by side). Finer-CAM here is its
 * base map (Seg-Grad-CAM); its objective is the caller's (finerCotangent).
 */
export function volumeCam(
  name: string,
  options: MethodOptions,
  activations: Float32Array,
  gradients: Float32Array,
  channels: number,
): VolumeCamResult {
  const method = checkVolumeMethod(name);
  if (method === 'saliency' || method === 'gradient-x-input')
    throw new SegGradCamError(`${method} is an input attribution: inputAttributionMap (src/volume/input-attribution.ts)`, 'usage');
  if (method === 'score-cam' || method === 'ablation-cam')
    throw new SegGradCamError(`${method} runs the model: its weights come from gradientFreeWeights (src/volume/gradient-free.ts)`, 'usage');
  const n = activations.length / channels;
  if (!Number.isInteger(n) || gradients.length !== activations.length)
    throw new SegGradCamError(`A (${activations.length}) and ∂S/∂A (${gradients.length}) do not hold ${channels} channels`, 'shape');
  const base = method === 'finer-cam' ? 'seg-grad-cam' : method;
  const negative = options.negative ?? false;
  const make = (neg: boolean) => {
    const m = createMethod(base, { ...options, negative: neg || undefined });
    if (isModelMethod(m)) throw new SegGradCamError(`${base} is not a CAM method`, 'usage');
    return m;
  };
  const pos = make(false);
  const neg = hasNegativeMap(base) ? make(true) : null;
  if (negative && !neg) throw new SegGradCamError(`${base} has no negative map`, 'usage');
  const a = tf.tensor4d(channelsLast(activations, channels, n), [1, n, 1, channels]);
  const g = pos.usesGradients ? tf.tensor4d(channelsLast(gradients, channels, n), [1, n, 1, channels]) : tf.zerosLike(a);
  try {
    const p = pos.compute(a, g);
    const cp = p.cam.dataSync().slice();
    const weights = p.weights ? Float32Array.from(p.weights.dataSync()) : null;
    tf.dispose([p.cam, p.weights ?? []]);
    let linear = cp;
    let cam = cp;
    if (neg) {
      const q = neg.compute(a, g);
      const cn = q.cam.dataSync().slice();
      tf.dispose([q.cam, q.weights ?? []]);
      linear = Float32Array.from(cp, (x, i) => x - cn[i]);
      if (negative) cam = cn;
    }
    return { cam: Float32Array.from(cam), linear: Float32Array.from(linear), weights };
  } finally {
    tf.dispose([a, g]);
  }
}

/**
 * The Finer-CAM objective (as src/methods/finer-cam.ts) as a cotangent over logits [K, N]:
 * at each voxel p of M (weight m_p), +m_p on class c and −α m_p q_pj / Σ_J q on each of the
 * `comparisons` classes J whose mean logit over M is closest to c's (q: softmax over the logits
 * at p of the J classes, held constant). One class (a sigmoid channel) cannot be contrasted.
 */
export function finerCotangent(
  logits: Float32Array,
  classes: number,
  mask: Float32Array,
  classId: number,
  comparisons = 3,
  alpha = 1,
): { cotangent: Float32Array; compared: number[] } {
  const n = mask.length;
  if (classes < 2) throw new SegGradCamError('finer-cam needs at least two classes to compare', 'class');
  const mean = new Float64Array(classes);
  for (let p = 0; p < n; p++) if (mask[p] !== 0) for (let j = 0; j < classes; j++) mean[j] += mask[p] * logits[j * n + p];
  const compared = Array.from({ length: classes }, (_, j) => j)
    .filter((j) => j !== classId)
    .sort((a, b) => Math.abs(mean[a] - mean[classId]) - Math.abs(mean[b] - mean[classId]) || a - b)
    .slice(0, comparisons);
  const cot = new Float32Array(classes * n);
  for (let p = 0; p < n; p++) {
    const m = mask[p];
    if (m === 0) continue;
    let top = -Infinity;
    for (const j of compared) top = Math.max(top, logits[j * n + p]);
    const q = compared.map((j) => Math.exp(logits[j * n + p] - top));
    const total = q.reduce((s, v) => s + v, 0);
    cot[classId * n + p] += m;
    compared.forEach((j, i) => (cot[j * n + p] -= (alpha * m * q[i]) / total));
  }
  return { cotangent: cot, compared };
}
