import * as tf from '@tensorflow/tfjs';
import type { GridBox } from '../contract.js';

/**
 * Cotangents on windows (as in src/engine/onnx/window.ts): a region's cotangent is zero outside
 * its box and each backward step spreads it only by its kernel, so the walker (./backward.ts)
 * keeps each cotangent as the box where it can be nonzero and the tensor on that box; the layer
 * rules (./rules.ts) say how each layer class maps boxes. The numbers are those of the whole map.
 */

/** A cotangent on a box of its tensor's map: `t` is [K, box height, box width, C]; it is zero outside the box. */
export interface Windowed {
  t: tf.Tensor;
  box: GridBox;
}

export const boxSize = (b: GridBox): [number, number] => [b[0][1] - b[0][0], b[1][1] - b[1][0]];

/** A batch-1 (or K) NHWC tensor on a box. */
export const onBox = (x: tf.Tensor, b: GridBox): tf.Tensor => tf.slice(x, [0, b[0][0], b[1][0], 0], [x.shape[0], ...boxSize(b), -1]);

/** A windowed cotangent as the whole [K, h, w, C] map (zeros outside its box). */
export const toMap = (w: Windowed, h: number, width: number): tf.Tensor =>
  tf.pad(w.t, [
    [0, 0],
    [w.box[0][0], h - w.box[0][1]],
    [w.box[1][0], width - w.box[1][1]],
    [0, 0],
  ]);

/** The sum of two windowed cotangents of one tensor, on the box holding both. */
export function addWindowed(a: Windowed, b: Windowed): Windowed {
  const box: GridBox = [
    [Math.min(a.box[0][0], b.box[0][0]), Math.max(a.box[0][1], b.box[0][1])],
    [Math.min(a.box[1][0], b.box[1][0]), Math.max(a.box[1][1], b.box[1][1])],
  ];
  const [h, w] = boxSize(box);
  const into = (x: Windowed) =>
    tf.pad(x.t, [
      [0, 0],
      [x.box[0][0] - box[0][0], box[0][0] + h - x.box[0][1]],
      [x.box[1][0] - box[1][0], box[1][0] + w - x.box[1][1]],
      [0, 0],
    ]);
  return { t: tf.add(into(a), into(b)), box };
}

/** The box widened to whole multiples of (sy, sx), and `t` (on the box) padded with zeros to it. */
export function alignWindowed(w: Windowed, sy: number, sx: number): Windowed {
  const a: GridBox = [
    [Math.floor(w.box[0][0] / sy) * sy, Math.ceil(w.box[0][1] / sy) * sy],
    [Math.floor(w.box[1][0] / sx) * sx, Math.ceil(w.box[1][1] / sx) * sx],
  ];
  const t = tf.pad(w.t, [
    [0, 0],
    [w.box[0][0] - a[0][0], a[0][1] - w.box[0][1]],
    [w.box[1][0] - a[1][0], a[1][1] - w.box[1][1]],
    [0, 0],
  ]);
  return { t, box: a };
}
