import * as tf from '@tensorflow/tfjs';
import type { BatchGradient, Objective, OutputInfo } from '../contract.js';

/** S(logits) for an objective, as a differentiable TF.js scalar. */
export function objectiveScore(logits: tf.Tensor, objective: Objective, output: OutputInfo): tf.Scalar {
  return tf.tidy(() => {
    const w = tf.tensor(objective.weights, logits.shape);
    return tf.sum(tf.mul(scored(logits, objective, output), w)).add(objective.offset) as tf.Scalar;
  });
}

/** S for each image of a batch of logits [B, …] (the objective's weights apply to every image): [B]. */
export function objectiveScores(logits: tf.Tensor, objective: Objective, output: OutputInfo): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, ...rest] = logits.shape;
    const w = tf.tensor(objective.weights, [1, ...rest]);
    const products = tf.mul(scored(logits, objective, output), w).reshape([b, -1]);
    return tf.sum(products, 1).add(objective.offset) as tf.Tensor1D;
  });
}

/**
 * Σ_k S_k(logits[k]) over a batch whose row k belongs to objective k — differentiating it gives
 * every ∂S_k/∂A_k in one backward pass (rows do not interact). Logits and probability
 * objectives may be mixed.
 */
export function stackObjectives(objectives: Objective[], output: OutputInfo): (logits: tf.Tensor) => tf.Scalar {
  const n = objectives[0].weights.length;
  const pack = (on: Objective['on']) => {
    const w = new Float32Array(n * objectives.length);
    objectives.forEach((o, k) => o.on === on && w.set(o.weights, k * n));
    return objectives.some((o) => o.on === on) ? w : null;
  };
  const onLogits = pack('logits');
  const onProbabilities = pack('probability');
  return (logits) =>
    tf.tidy(() => {
      let s = tf.scalar(0);
      if (onLogits) s = tf.add(s, tf.sum(tf.mul(logits, tf.tensor(onLogits, logits.shape))));
      if (onProbabilities) {
        const p = scored(logits, { weights: onProbabilities, on: 'probability', offset: 0 }, output);
        s = tf.add(s, tf.sum(tf.mul(p, tf.tensor(onProbabilities, logits.shape))));
      }
      return s as tf.Scalar;
    });
}

/**
 * ∂S/∂logits for an objective at the given logits (batch 1): the weights themselves on logits,
 * through the softmax's or sigmoid's Jacobian on probabilities. The seed of a reverse pass.
 */
export function objectiveCotangent(logits: tf.Tensor, objective: Objective, output: OutputInfo): tf.Tensor {
  return tf.tidy(() => {
    const w = tf.tensor(objective.weights, logits.shape);
    if (objective.on === 'logits') return w;
    const p = scored(logits, objective, output);
    if (output.channels === 1 || output.activation === 'sigmoid') return tf.mul(w, tf.mul(p, tf.sub(1, p)));
    return tf.mul(p, tf.sub(w, tf.sum(tf.mul(p, w), -1, true)));
  });
}

function scored(logits: tf.Tensor, objective: Objective, output: OutputInfo): tf.Tensor {
  if (objective.on === 'logits') return logits;
  return output.channels === 1 || output.activation === 'sigmoid' ? tf.sigmoid(logits) : tf.softmax(logits, -1);
}

/** Logits of a batch, computed by an adapter (tensors it creates are tidied by the caller). */
export type LogitsOf = (inputs: tf.Tensor4D) => tf.Tensor;

/** The batch in chunks of at most `maxBatch` images: the inputs themselves when they fit (no copy), else slices. */
function* chunks(inputs: tf.Tensor4D, maxBatch: number): Generator<tf.Tensor4D> {
  const b = inputs.shape[0];
  const size = Math.max(1, Math.min(b, maxBatch));
  for (let i = 0; i < b; i += size) {
    yield size >= b ? inputs : (inputs.slice([i, 0, 0, 0], [Math.min(size, b - i), -1, -1, -1]) as tf.Tensor4D);
  }
}

/** Frees a chunk unless it is the caller's own batch. */
function release(chunk: tf.Tensor4D, inputs: tf.Tensor4D): void {
  if (chunk !== inputs) chunk.dispose();
}

/** S per image, one model call per chunk of at most `maxBatch` images. */
export async function batchScores(
  inputs: tf.Tensor4D,
  objective: Objective,
  output: OutputInfo,
  maxBatch: number,
  logitsOf: LogitsOf,
): Promise<Float32Array> {
  const out = new Float32Array(inputs.shape[0]);
  let at = 0;
  for (const chunk of chunks(inputs, maxBatch)) {
    const s = tf.tidy(() => objectiveScores(logitsOf(chunk), objective, output));
    out.set(await s.data(), at);
    at += chunk.shape[0];
    s.dispose();
    release(chunk, inputs);
  }
  return out;
}

/**
 * S_b and ∂S_b/∂x_b per image. The images of a batch do not interact (inference mode), so the
 * gradient of Σ_b S_b w.r.t. the batch is each image's own gradient.
 */
export async function batchInputGradients(
  inputs: tf.Tensor4D,
  objective: Objective,
  output: OutputInfo,
  maxBatch: number,
  logitsOf: LogitsOf,
): Promise<BatchGradient> {
  const scores = new Float32Array(inputs.shape[0]);
  const grads: tf.Tensor4D[] = [];
  let at = 0;
  try {
    for (const chunk of chunks(inputs, maxBatch)) {
      let perImage: tf.Tensor | null = null;
      const g = tf.tidy(() =>
        tf.grad((x: tf.Tensor) => {
          const s = objectiveScores(logitsOf(x as tf.Tensor4D), objective, output);
          perImage = tf.keep(s.clone());
          return tf.sum(s);
        })(chunk),
      ) as tf.Tensor4D;
      grads.push(g);
      const p = perImage as tf.Tensor | null;
      if (p) {
        scores.set(await p.data(), at);
        p.dispose();
      }
      at += chunk.shape[0];
      release(chunk, inputs);
    }
    const gradients = grads.length === 1 ? grads[0] : (tf.concat(grads, 0) as tf.Tensor4D);
    if (grads.length > 1) tf.dispose(grads);
    return { gradients, scores };
  } catch (err) {
    tf.dispose(grads);
    throw err;
  }
}
