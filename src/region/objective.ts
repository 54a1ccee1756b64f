import type { GridBox, Objective, OutputInfo } from '../engine/contract.js';

export type ScoreKind = 'logits' | 'probability';

/** Number of classes a model distinguishes: a single sigmoid channel is binary (2). */
export function classCount(output: OutputInfo): number {
  return output.channels === 1 ? 2 : output.channels;
}

/**
 * S = Σ_{(i,j)∈M} y^c_ij as an objective over the output. A single-channel (sigmoid) model's
 * class 1 is its channel and class 0 the channel's negation: −y on logits, 1 − σ(y) on
 * probabilities (= −σ(y) + 1 per pixel, hence the offset).
 */
export function regionObjective(output: OutputInfo, classIndex: number, mask: Uint8Array, on: ScoreKind): Objective {
  const C = output.channels;
  const weights = new Float32Array(mask.length * C);
  let count = 0;
  if (C === 1) {
    const sign = classIndex === 1 ? 1 : -1;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i]) {
        weights[i] = sign;
        count++;
      }
    }
    const offset = on === 'probability' && sign < 0 ? count : 0;
    return withSupport({ weights, on, offset }, mask, output);
  }
  for (let i = 0; i < mask.length; i++) if (mask[i]) weights[i * C + classIndex] = 1;
  return withSupport({ weights, on, offset: 0 }, mask, output);
}

/** The objective with its support: the bounding box of M on a map output (nothing for a vector output). */
function withSupport(objective: Objective, mask: Uint8Array, output: OutputInfo): Objective {
  if (output.kind !== 'map') return objective;
  const box = maskBox(mask, output.height, output.width);
  return box ? { ...objective, support: box } : objective;
}

/** The bounding box of the cells of an [h, w, c] array (a mask: c = 1) with a nonzero entry, or null when it has none. */
export function maskBox(values: ArrayLike<number>, h: number, w: number, c = 1): GridBox | null {
  let y0 = h;
  let y1 = -1;
  let x0 = w;
  let x1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c;
      let any = false;
      for (let k = 0; k < c && !any; k++) any = values[o + k] !== 0;
      if (!any) continue;
      if (y < y0) y0 = y;
      y1 = y;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
    }
  }
  return y1 < 0
    ? null
    : [
        [y0, y1 + 1],
        [x0, x1 + 1],
      ];
}
