import * as tf from '@tensorflow/tfjs';
import { weightedCam, type CamMethod, type NegativeOption } from './method.js';
import { nonNegative } from './options.js';

export interface FemOptions extends NegativeOption {
  /** FEM's k in the k-sigma rule (default 2). */
  sigmas?: number;
}

/**
 * FEM, the Feature Explanation Method (Fuad et al. 2020), as pytorch-grad-cam defines it: gradient-free; per channel,
 * the threshold t_k = μ_k + k·σ_k (mean and population standard deviation of A^k over positions), the weight
 * w_k = the fraction of positions where A^k > t_k; the map ReLU(Σ_k w_k A^k).
 */
export class Fem implements CamMethod {
  readonly name = 'fem';
  readonly usesGradients = false;
  readonly sigmas: number;
  readonly negative: boolean;

  constructor(options: FemOptions = {}) {
    this.sigmas = nonNegative(options.sigmas ?? 2, 'sigmas');
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(activations, [0, 1, 2], true);
      const threshold = tf.add(mean, tf.mul(tf.sqrt(variance), this.sigmas));
      const weights = tf.mean(tf.cast(tf.greater(activations, threshold), 'float32'), [0, 1, 2]) as tf.Tensor1D;
      return { cam: weightedCam(activations, weights, this.negative), weights };
    });
  }
}
