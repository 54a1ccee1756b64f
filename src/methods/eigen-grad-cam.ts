import * as tf from '@tensorflow/tfjs';
import type { CamMethod, NegativeOption } from './method.js';
import { firstComponentProjection } from './projection.js';

/**
 * Eigen-Grad-CAM (pytorch-grad-cam's EigenGradCAM: Eigen-CAM, Muhammad & Yeasin 2020, on gradients × activations):
 * X = ∂S/∂A ⊙ A, rows = positions, centred, projected on the first principal component, then ReLU. The component's
 * sign is oriented along the mean row of X (v · X̄ ≥ 0, as our Eigen-CAM); pytorch-grad-cam leaves it to the SVD.
 */
export class EigenGradCam implements CamMethod {
  readonly name = 'eigen-grad-cam';
  readonly usesGradients = true;
  readonly negative: boolean;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    const x = tf.tidy(() => tf.mul(gradients, activations) as tf.Tensor4D);
    const { projection, component } = firstComponentProjection(x, 'mean');
    x.dispose();
    const cam = tf.tidy(() => tf.relu(this.negative ? tf.neg(projection) : projection) as tf.Tensor2D);
    projection.dispose();
    return { cam, weights: component };
  }
}
