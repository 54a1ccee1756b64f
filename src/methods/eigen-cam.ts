import * as tf from '@tensorflow/tfjs';
import type { CamMethod } from './method.js';

/**
 * Eigen-CAM (Muhammad & Yeasin 2020): the activations projected on their first principal
 * component, as pytorch-grad-cam's get_2d_projection: rows = positions, columns centred, then
 * ReLU. No gradient, so the map is the same for every region and class. The component's sign
 * is arbitrary; we orient it along the mean activation (v · Ā ≥ 0, Ā = mean over positions),
 * so strongly activated positions project positively. Weights: the component v.
 */
export class EigenCam implements CamMethod {
  readonly name = 'eigen-cam';
  readonly usesGradients = false;

  compute(activations: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    const [, h, w, k] = activations.shape;
    const { centred, covariance, mean } = tf.tidy(() => {
      const x = activations.reshape([h * w, k]);
      const m = tf.mean(x, 0);
      const c = tf.sub(x, m);
      return { centred: c, covariance: tf.matMul(c, c, true, false), mean: m };
    });
    const v = firstComponent(covariance.dataSync(), k, mean.dataSync());
    const weights = tf.tensor1d(v);
    const cam = tf.tidy(() => tf.relu(tf.matMul(centred, weights.reshape([k, 1]))).reshape([h, w]) as tf.Tensor2D);
    tf.dispose([centred, covariance, mean]);
    return { cam, weights };
  }
}

/** The unit eigenvector of the largest eigenvalue of a symmetric PSD K×K matrix (power iteration, float64), oriented along `direction`. */
export function firstComponent(matrix: ArrayLike<number>, k: number, direction: ArrayLike<number>): Float32Array {
  let v = new Float64Array(k);
  // A start with weight on every coordinate (not orthogonal to the answer in practice), deterministic.
  for (let i = 0; i < k; i++) v[i] = 1 + i / k;
  normalise(v);
  let lambda = 0;
  for (let it = 0; it < 2000; it++) {
    const next = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += matrix[i * k + j] * v[j];
      next[i] = s;
    }
    const norm = normalise(next);
    if (norm === 0) return new Float32Array(k);
    let delta = 0;
    for (let i = 0; i < k; i++) delta = Math.max(delta, Math.abs(next[i] - v[i]));
    v = next;
    const done = Math.abs(norm - lambda) <= 1e-12 * norm && delta < 1e-9;
    lambda = norm;
    if (done) break;
  }
  let dot = 0;
  for (let i = 0; i < k; i++) dot += v[i] * direction[i];
  if (dot === 0) {
    // No preferred direction: make the largest coordinate positive.
    let big = 0;
    for (let i = 1; i < k; i++) if (Math.abs(v[i]) > Math.abs(v[big])) big = i;
    dot = v[big];
  }
  return Float32Array.from(v, (x) => (dot < 0 ? -x : x));
}

function normalise(v: Float64Array): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  n = Math.sqrt(n);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return n;
}
