import * as tf from '@tensorflow/tfjs';
import type { CamMethod, NegativeOption } from './method.js';
import { firstComponentProjection } from './projection.js';

/**
 * Seg-Eigen-CAM (Chung & Ying 2025, made for semantic segmentation): X = |∂S/∂A| ⊙ A (element-wise,
 * Eq. 10), rows = positions, centred; the map is X's projection on its first principal component,
 * sign-corrected so that |max| ≥ |min| (Eq. 13), then ReLU. Weights: the component v.
 */
export class SegEigenCam implements CamMethod {
  readonly name = 'seg-eigen-cam';
  readonly usesGradients = true;
  readonly negative: boolean;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    const x = tf.tidy(() => tf.mul(tf.abs(gradients), activations) as tf.Tensor4D);
    const { projection, component } = firstComponentProjection(x, 'extreme');
    x.dispose();
    const cam = tf.tidy(() => tf.relu(this.negative ? tf.neg(projection) : projection) as tf.Tensor2D);
    projection.dispose();
    return { cam, weights: component };
  }
}
