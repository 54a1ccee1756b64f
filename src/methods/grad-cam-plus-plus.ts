import * as tf from '@tensorflow/tfjs';
import { ChannelWeightedCam } from './method.js';

/**
 * Grad-CAM++ (Chattopadhay et al. 2018) in pytorch-grad-cam's closed form (the exponential
 * trick, with gradients of S itself): a = g² / (2g² + Σ_uv A · g³), zero where g = 0;
 * α_k = Σ_uv a · ReLU(g).
 */
export class GradCamPlusPlus extends ChannelWeightedCam {
  readonly name = 'grad-cam++';
  channelWeights(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => {
      const g2 = tf.square(gradients);
      const g3 = tf.mul(g2, gradients);
      const sumA = tf.sum(activations, [1, 2], true);
      const a = tf.div(g2, tf.add(tf.add(tf.mul(g2, 2), tf.mul(sumA, g3)), 1e-6));
      const aij = tf.where(tf.notEqual(gradients, 0), a, tf.zerosLike(a));
      return tf.sum(tf.mul(aij, tf.relu(gradients)), [0, 1, 2]) as tf.Tensor1D;
    });
  }
}
