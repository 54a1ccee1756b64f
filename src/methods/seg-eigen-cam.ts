import * as tf from '@tensorflow/tfjs';
import type { CamMethod } from './method.js';
import { ProjectedCam } from './projection.js';

/**
 * Seg-Eigen-CAM (Chung & Ying 2025, made for semantic segmentation): X = |∂S/∂A| ⊙ A (element-wise,
 * Eq. 10), rows = positions, centred; the map is X's projection on its first principal component,
 * sign-corrected so that |max| ≥ |min| (Eq. 13), then ReLU. Weights: the component v.
 */
export class SegEigenCam extends ProjectedCam implements CamMethod {
  readonly name = 'seg-eigen-cam';
  readonly sign = 'extreme';

  features(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D {
    return tf.mul(tf.abs(gradients), activations);
  }
}
