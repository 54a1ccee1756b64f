import type { Objective, OutputInfo } from '../model/adapter.js';

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
    return { weights, on, offset };
  }
  for (let i = 0; i < mask.length; i++) if (mask[i]) weights[i * C + classIndex] = 1;
  return { weights, on, offset: 0 };
}
