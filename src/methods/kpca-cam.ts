import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { CamMethod, NegativeOption } from './method.js';
import { positive } from './options.js';
import { flips } from './projection.js';

export type KpcaKernel = 'sigmoid' | 'rbf' | 'linear';

export interface KpcaCamOptions extends NegativeOption {
  /** Kernel of the kernel PCA (default 'sigmoid', as pytorch-grad-cam). */
  kernel?: KpcaKernel;
  /** γ of the sigmoid and RBF kernels (default 1/K, K = the layer's channels, as scikit-learn). */
  gamma?: number;
}

/** The kernel matrix grows as positions²: above this many positions the layer is refused (64 MB of float32). */
export const KPCA_MAX_POSITIONS = 4096;

/**
 * KPCA-CAM (Karmani et al. 2024), gradient-free, as pytorch-grad-cam's KPCA_CAM: rows = positions of A, centred;
 * the kernel matrix K_ij = k(a_i, a_j) (sigmoid: tanh(γ a_i·a_j + 1); RBF: exp(−γ |a_i − a_j|²); linear: a_i·a_j),
 * centred in feature space (K − 1K − K1 + 1K1, 1 = the N×N matrix of 1/N); the map is the first kernel principal
 * component's projection u·√λ (scikit-learn's KernelPCA.fit_transform, u its top eigenvector), signed so that its
 * largest-magnitude entry is positive (scikit-learn's svd_flip), then ReLU.
 */
export class KpcaCam implements CamMethod {
  readonly name = 'kpca-cam';
  readonly usesGradients = false;
  readonly kernel: KpcaKernel;
  readonly gamma: number | undefined;
  readonly negative: boolean;

  constructor(options: KpcaCamOptions = {}) {
    const kernel = options.kernel ?? 'sigmoid';
    if (!['sigmoid', 'rbf', 'linear'].includes(kernel))
      throw new SegGradCamError(`unknown kernel '${String(kernel)}'; expected sigmoid, rbf or linear`, 'usage');
    this.kernel = kernel;
    this.gamma = options.gamma === undefined ? undefined : positive(options.gamma, 'gamma');
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D): { cam: tf.Tensor2D; weights: null } {
    const [, h, w, k] = activations.shape;
    const n = h * w;
    if (n > KPCA_MAX_POSITIONS)
      throw new SegGradCamError(
        `kpca-cam needs a ${n}x${n} kernel matrix at this ${h}x${w} layer; choose a layer with at most ${KPCA_MAX_POSITIONS} positions`,
        'usage',
      );
    const gamma = this.gamma ?? 1 / k;
    const centredKernel = tf.tidy(() => {
      const rows = activations.reshape([n, k]);
      const c = tf.sub(rows, tf.mean(rows, 0));
      const gram = tf.matMul(c, c, false, true);
      let K: tf.Tensor;
      if (this.kernel === 'linear') K = gram;
      else if (this.kernel === 'sigmoid') K = tf.tanh(tf.add(tf.mul(gram, gamma), 1));
      else {
        const sq = tf.sum(tf.square(c), 1);
        const d2 = tf.relu(tf.sub(tf.add(sq.reshape([n, 1]), sq.reshape([1, n])), tf.mul(gram, 2)));
        K = tf.exp(tf.mul(d2, -gamma));
      }
      const rowMean = tf.mean(K, 1, true);
      const colMean = tf.mean(K, 0, true);
      return tf.add(tf.sub(tf.sub(K, rowMean), colMean), tf.mean(K));
    });
    const matrix = Float64Array.from(centredKernel.dataSync());
    centredKernel.dispose();
    const { vector, value } = topEigenpair(matrix, n);
    const scale = Math.sqrt(Math.max(value, 0));
    const sign = flips(vector) ? -1 : 1;
    const projection = Float32Array.from(vector, (v) => v * scale * sign * (this.negative ? -1 : 1));
    const cam = tf.tidy(() => tf.relu(tf.tensor2d(projection, [h, w])) as tf.Tensor2D);
    return { cam, weights: null };
  }
}

/**
 * The eigenvector of the largest (algebraic) eigenvalue of a symmetric n×n matrix, by power iteration in float64;
 * a kernel that is not positive semi-definite (sigmoid) may have a larger negative eigenvalue, so the matrix is then
 * shifted by it to make the wanted eigenvalue the dominant one.
 */
export function topEigenpair(matrix: Float64Array, n: number): { vector: Float64Array; value: number } {
  const first = powerIteration(matrix, n, 0);
  if (first.value >= 0) return first;
  return powerIteration(matrix, n, -first.value);
}

function powerIteration(matrix: Float64Array, n: number, shift: number): { vector: Float64Array; value: number } {
  let v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 1 + i / n;
  normalise(v);
  let value = 0;
  for (let it = 0; it < 3000; it++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = shift * v[i];
      const row = i * n;
      for (let j = 0; j < n; j++) s += matrix[row + j] * v[j];
      next[i] = s;
    }
    // Rayleigh quotient v·(M + shift)v with ‖v‖ = 1: the eigenvalue of the shifted matrix.
    let rq = 0;
    for (let i = 0; i < n; i++) rq += v[i] * next[i];
    const norm = normalise(next);
    if (norm === 0) return { vector: next, value: 0 };
    // A negative dominant eigenvalue flips the vector each step: compare up to sign.
    let same = 0;
    let opposite = 0;
    for (let i = 0; i < n; i++) {
      same = Math.max(same, Math.abs(next[i] - v[i]));
      opposite = Math.max(opposite, Math.abs(next[i] + v[i]));
    }
    v = next;
    const converged = Math.min(same, opposite) < 1e-11 && Math.abs(rq - value) <= 1e-13 * Math.abs(rq);
    value = rq;
    if (converged) break;
  }
  return { vector: v, value: value - shift };
}

function normalise(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}
