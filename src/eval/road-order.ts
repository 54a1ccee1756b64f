/**
 * ROAD's removal orders on a patch grid (Rong et al. 2022; docs/evaluation/protocol.md): the image
 * is cut into square patches of one size for every method and for the random order; a map orders
 * the patches by the sum of its values over each patch's removable pixels (most relevant first =
 * MoRF, least relevant first = LeRF), ties broken by a seeded permutation; the random order is a
 * seeded permutation of the patches. Step j of k removes the first round(j·P/k) of the P patches,
 * and the removed pixels are filled by noisy linear imputation (road.ts). Pure functions.
 */
import { SegGradCamError } from '../errors.js';
import { randomOrder, type Random } from './perturbation.js';
import { noisyLinearImpute } from './road.js';

/** The patches of a grid: the removable pixels of each (patches without any are left out). */
export function patchGrid(width: number, height: number, size: number, removable?: ArrayLike<number>): Int32Array[] {
  if (!Number.isInteger(size) || size < 1) throw new SegGradCamError(`the patch size must be a positive integer, got ${size}`, 'usage');
  if (removable && removable.length !== width * height)
    throw new SegGradCamError(`the removable-pixel mask has ${removable.length} pixels, not ${width * height}`, 'shape');
  const patches: Int32Array[] = [];
  for (let y0 = 0; y0 < height; y0 += size) {
    for (let x0 = 0; x0 < width; x0 += size) {
      const pixels: number[] = [];
      for (let y = y0; y < Math.min(height, y0 + size); y++)
        for (let x = x0; x < Math.min(width, x0 + size); x++) if (!removable || removable[y * width + x]) pixels.push(y * width + x);
      if (pixels.length > 0) patches.push(Int32Array.from(pixels));
    }
  }
  return patches;
}

/** The sum of the map over each patch's pixels. */
export function patchScores(map: ArrayLike<number>, patches: Int32Array[]): Float64Array {
  return Float64Array.from(patches, (pixels) => {
    let s = 0;
    for (const p of pixels) s += map[p];
    return s;
  });
}

/**
 * Patch indices by decreasing score ('morf') or increasing score ('lerf'); equal scores (a flat or
 * empty map) in the order of a seeded random permutation.
 */
export function patchOrder(scores: ArrayLike<number>, order: 'morf' | 'lerf', random: Random): Int32Array {
  const n = scores.length;
  const tiebreak = new Float64Array(n);
  randomOrder(n, random).forEach((p, rank) => (tiebreak[p] = rank));
  const sign = order === 'morf' ? -1 : 1;
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => sign * (scores[a] - scores[b]) || tiebreak[a] - tiebreak[b]);
  return idx;
}

/** Patches removed after step j = 0..k: round(j·P/k). */
export function removalCounts(patches: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new SegGradCamError(`steps must be a positive integer, got ${steps}`, 'usage');
  return Array.from({ length: steps + 1 }, (_, j) => Math.round((j * patches) / steps));
}

/**
 * The k images of a removal path after steps 1..k (step 0 is the image itself), concatenated:
 * image j has the first round(j·P/k) patches of `order` removed and imputed; `seedOf(j)` seeds
 * the imputation noise of step j.
 */
export function roadImages(
  input: Float32Array,
  width: number,
  height: number,
  channels: number,
  patches: Int32Array[],
  order: Int32Array,
  steps: number,
  noise: number,
  seedOf: (step: number) => number,
): Float32Array {
  const size = width * height * channels;
  if (input.length !== size) throw new SegGradCamError(`roadImages: ${input.length} values for ${width}x${height}x${channels}`, 'shape');
  const counts = removalCounts(order.length, steps);
  const out = new Float32Array(size * steps);
  const removed = new Uint8Array(width * height);
  let done = 0;
  for (let j = 1; j <= steps; j++) {
    for (; done < counts[j]; done++) for (const p of patches[order[done]]) removed[p] = 1;
    out.set(noisyLinearImpute(input, width, height, channels, removed, { noise, seed: seedOf(j) }), (j - 1) * size);
  }
  return out;
}
