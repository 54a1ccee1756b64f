import * as tf from '@tensorflow/tfjs';
import type { CamMethod } from './method.js';
import { ProjectedCam } from './projection.js';

/**
 * Eigen-Grad-CAM (pytorch-grad-cam's EigenGradCAM: Eigen-CAM, Muhammad & Yeasin 2020, on gradients × activations):
 * X = ∂S/∂A ⊙ A, rows = positions, centred, projected on the first principal component, then ReLU. The component's
 * sign is oriented along the mean row of X (v · X̄ ≥ 0, as our Eigen-CAM); pytorch-grad-cam leaves it to the SVD.
 */
export class EigenGradCam extends ProjectedCam implements CamMethod {
  readonly name = 'eigen-grad-cam';
  readonly sign = 'mean';

  features(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D {
    return tf.mul(gradients, activations);
  }
}
