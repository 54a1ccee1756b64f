import type * as tf from '@tensorflow/tfjs';
import { ElementWeightedCam } from './method.js';

/** HiResCAM (Draelos & Carin 2020): ReLU(Σ_k ∂S/∂A^k ⊙ A^k), element-wise, no spatial averaging of the gradient. */
export class HiResCam extends ElementWeightedCam {
  readonly name = 'hires-cam';
  elementWeights(_activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D {
    return gradients;
  }
}
