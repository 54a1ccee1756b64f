import * as tf from '@tensorflow/tfjs';

/**
 * A CAM method turns a layer's activations A [1,h,w,K] and gradients ∂S/∂A into a map
 * [h, w]. Most methods only say how to weight the channels (`channelWeights`); the base
 * then computes ReLU(Σ_k α_k A^k), as pytorch-grad-cam does.
 */
export interface CamMethod {
  readonly name: string;
  /** Needs ∂S/∂A (false for gradient-free methods such as Eigen-CAM). */
  readonly usesGradients: boolean;
  /** Returns the map [h, w] (after ReLU) and the channel weights α [K] where they exist. */
  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D | null };
}

export abstract class ChannelWeightedCam implements CamMethod {
  abstract readonly name: string;
  readonly usesGradients = true;
  abstract channelWeights(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor1D;

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    return tf.tidy(() => {
      const weights = this.channelWeights(activations, gradients);
      const [, h, w] = activations.shape;
      const cam = tf.relu(tf.sum(tf.mul(activations, weights), -1)).reshape([h, w]) as tf.Tensor2D;
      return { cam, weights };
    });
  }
}
