import * as tf from '@tensorflow/tfjs';
import { ChannelWeightedCam } from './method.js';

/** XGrad-CAM (Fu et al. 2020): α_k = Σ_uv (A^k_uv / Σ_uv A^k_uv) ∂S/∂A^k_uv. */
export class XGradCam extends ChannelWeightedCam {
  readonly name = 'xgrad-cam';
  channelWeights(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => {
      const sumA = tf.add(tf.sum(activations, [1, 2], true), 1e-7);
      return tf.sum(tf.div(tf.mul(activations, gradients), sumA), [0, 1, 2]) as tf.Tensor1D;
    });
  }
}
