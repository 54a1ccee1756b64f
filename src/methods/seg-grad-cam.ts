import * as tf from '@tensorflow/tfjs';
import { ChannelWeightedCam } from './method.js';

/** Seg-Grad-CAM (Vinogradova et al. 2020): α_k = (1/N) Σ_uv ∂S/∂A^k_uv with S = Σ_M y^c. */
export class SegGradCam extends ChannelWeightedCam {
  readonly name = 'seg-grad-cam';
  channelWeights(_activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor1D {
    return tf.mean(gradients, [0, 1, 2]) as tf.Tensor1D;
  }
}
