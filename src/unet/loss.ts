/**
 * What a training step minimises and at which rate: the learning-rate schedule (linear warm-up,
 * cosine decay), the class weights and the segmentation loss (class-weighted softmax
 * cross-entropy plus soft Dice). See docs/training.md for the recipe.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainOptions } from './options.js';

/**
 * Learning rate at a step: linear warm-up from lr/10 over warmupSteps, then cosine decay to
 * lr * minLrFactor at the end. `progress` (0..1, default step / steps) is the position in the run.
 */
export function learningRate(
  step: number,
  o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'minLrFactor' | 'steps'>,
  progress?: number,
): number {
  if (step < o.warmupSteps) return o.lr * (0.1 + (0.9 * step) / o.warmupSteps);
  const p = progress ?? step / o.steps;
  const p0 = o.warmupSteps / o.steps;
  const t = Math.min(1, Math.max(0, (p - p0) / Math.max(1e-9, 1 - p0)));
  const min = o.lr * o.minLrFactor;
  return min + (o.lr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Class weights frequency^-power normalised so that the mean weight per pixel is 1. */
export function classWeightsFromFrequencies(freq: number[], power: number): number[] {
  const w = freq.map((f) => Math.min(1e3, Math.pow(Math.max(f, 1e-6), -power)));
  const mean = freq.reduce((s, f, c) => s + f * w[c], 0);
  return w.map((v) => v / mean);
}

/**
 * Segmentation loss: ceWeight * class-weighted softmax cross-entropy + diceWeight * (1 - mean soft
 * Dice). `yOneHot` [N,H,W,C]; `yWeighted` = yOneHot * classWeight[c] (made in JS, no broadcast).
 */
export function segmentationLoss(
  logits: tf.Tensor4D,
  yOneHot: tf.Tensor4D,
  yWeighted: tf.Tensor4D,
  ceWeight: number,
  diceWeight: number,
): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    let loss: tf.Scalar = tf.scalar(0);
    if (ceWeight > 0) {
      const ce = tf.div(tf.neg(tf.sum(tf.mul(yWeighted, logp))), tf.sum(yWeighted)) as tf.Scalar;
      loss = tf.add(loss, tf.mul(ce, ceWeight));
    }
    if (diceWeight > 0) {
      const p = tf.exp(logp);
      const inter = tf.sum(tf.mul(p, yOneHot), [0, 1, 2]);
      const denom = tf.add(tf.sum(p, [0, 1, 2]), tf.sum(yOneHot, [0, 1, 2]));
      const dice = tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(denom, 1));
      loss = tf.add(loss, tf.mul(tf.sub(1, tf.mean(dice)), diceWeight));
    }
    return loss;
  });
}
