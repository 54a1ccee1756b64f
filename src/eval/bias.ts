/**
 * Bias detection (docs/evaluation/protocol.md, item 1): for M = the pixels of the bias digit, how
 * much of the heatmap's positive mass lies on the bias texture (the background pixels of a tile
 * whose background is the bias texture).
 */

/**
 * Share of the positive heatmap mass on the mask: Σ_{mask} max(h, 0) / Σ max(h, 0), in [0, 1].
 * NaN when the heatmap has no positive mass (an empty explanation has no share).
 */
export function biasShare(heatmap: ArrayLike<number>, mask: ArrayLike<number>): number {
  if (heatmap.length !== mask.length) throw new RangeError(`biasShare: heatmap has ${heatmap.length} values, mask ${mask.length}`);
  let total = 0;
  let on = 0;
  for (let i = 0; i < heatmap.length; i++) {
    const v = heatmap[i] > 0 ? heatmap[i] : 0;
    total += v;
    if (mask[i]) on += v;
  }
  return total > 0 ? on / total : Number.NaN;
}

/** The share a uniform heatmap would give: the fraction of pixels in the mask (the chance level). */
export function areaShare(mask: ArrayLike<number>): number {
  if (mask.length === 0) return Number.NaN;
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) n++;
  return n / mask.length;
}
