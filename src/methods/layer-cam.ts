import * as tf from '@tensorflow/tfjs';
import { ElementWeightedCam } from './method.js';

/** LayerCAM (Jiang et al. 2021): ReLU(Σ_k ReLU(∂S/∂A^k) ⊙ A^k). */
export class LayerCam extends ElementWeightedCam {
  readonly name = 'layer-cam';
  elementWeights(_activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D {
    return tf.relu(gradients);
  }
}
