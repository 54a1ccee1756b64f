import * as tf from '@tensorflow/tfjs';
import type { OutputInfo } from './engine/contract.js';
import { checkTensor } from './explain/numeric.js';

/**
 * The predicted class per output pixel: argmax over channels, or logit > 0 for one sigmoid
 * channel. Logits with NaN or ±Inf are a typed 'numeric' error (an argmax of them is no prediction).
 */
export function predictLabels(logits: tf.Tensor, output: OutputInfo): Int32Array {
  checkTensor(logits, 'the logits');
  const t = tf.tidy(() => {
    const flat = logits.reshape([output.height * output.width, output.channels]);
    return output.channels === 1 ? tf.greater(flat, 0).cast('int32').reshape([-1]) : tf.argMax(flat, -1);
  });
  const labels = new Int32Array(t.dataSync());
  t.dispose();
  return labels;
}
