import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { Objective, OutputInfo } from '../engine/contract.js';

/** Test-time augmentation: which altered copies of the image are explained and averaged with it. */
export interface AugmentOptions {
  /** Add the horizontally flipped image (default true). */
  flip?: boolean;
  /** Add the image with its brightness scaled by each factor (default [0.9, 1.1]). */
  brightness?: number[];
}

export interface Augmentation {
  readonly name: string;
  readonly identity: boolean;
  readonly flip: boolean;
  /** The augmented model input (a new tensor), x in the model's input range. */
  apply(input: tf.Tensor4D, range: [number, number]): tf.Tensor4D;
}

const identity: Augmentation = { name: 'identity', identity: true, flip: false, apply: (x) => x.clone() };

/**
 * The original plus, by default, its horizontal flip and brightness ×0.9 and ×1.1 (each on its
 * own, not combined). Brightness scales the distance from black: lo + f·(x − lo), clipped to
 * the range — what scaling the pixel values does before they are mapped to the input range.
 */
export function augmentations(option: boolean | AugmentOptions | undefined): Augmentation[] {
  if (!option) return [identity];
  const o = option === true ? {} : option;
  const list = [identity];
  if (o.flip ?? true) list.push({ name: 'flip', identity: false, flip: true, apply: (x) => tf.reverse(x, 2) });
  for (const f of o.brightness ?? [0.9, 1.1]) {
    if (!Number.isFinite(f) || f <= 0) throw new SegGradCamError(`brightness factors must be > 0, got ${f}`, 'usage');
    list.push({
      name: `brightness ×${f}`,
      identity: false,
      flip: false,
      apply: (x, [lo, hi]) =>
        tf.tidy(() => tf.clipByValue(tf.add(tf.mul(tf.sub(x, lo), f), lo), Math.min(lo, hi), Math.max(lo, hi)) as tf.Tensor4D),
    });
  }
  return list;
}

/** The objective for the flipped image: M mirrored left–right (a vector output has nothing to mirror). */
export function flipObjective(objective: Objective, output: OutputInfo): Objective {
  if (output.kind !== 'map') return objective;
  const { width: W, height: H, channels: C } = output;
  const w = objective.weights;
  const flipped = new Float32Array(w.length);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) flipped[(y * W + (W - 1 - x)) * C + c] = w[(y * W + x) * C + c];
  const s = objective.support;
  return { ...objective, weights: flipped, support: s && [s[0], [W - s[1][1], W - s[1][0]]] };
}
