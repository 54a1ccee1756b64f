import * as tf from '@tensorflow/tfjs';
import type { Objective, OutputInfo } from './adapter.js';

/** S(logits) for an objective, as a differentiable TF.js scalar. */
export function objectiveScore(logits: tf.Tensor, objective: Objective, output: OutputInfo): tf.Scalar {
  return tf.tidy(() => {
    const w = tf.tensor(objective.weights, logits.shape);
    let y = logits;
    if (objective.on === 'probability') {
      y = output.channels === 1 || output.activation === 'sigmoid' ? tf.sigmoid(logits) : tf.softmax(logits, -1);
    }
    return tf.sum(tf.mul(y, w)).add(objective.offset) as tf.Scalar;
  });
}
