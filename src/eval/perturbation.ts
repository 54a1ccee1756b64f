/**
 * Deletion and insertion curves (Petsiuk et al. 2018, RISE; docs/evaluation/protocol.md, item 2):
 * pixels are removed from the image (replaced by a baseline) or revealed on the baseline in the
 * order of the heatmap, in k equal steps, and the score S is tracked. The area under the curve
 * (x = fraction of pixels changed, in [0, 1]) summarises it: a faithful heatmap makes S fall
 * fast under deletion (low AUC) and rise fast under insertion (high AUC). A random order is the
 * reference.
 *
 * Images here are plain Float32Arrays, H·W·C row-major (channels last), so the curve maths is
 * independent of the model; the caller supplies a batched scorer.
 */

/** A stream of uniform numbers in [0, 1). */
export type Random = () => number;

/** The pixel indices 0..n-1 in a random order (Fisher–Yates). */
export function randomOrder(n: number, random: Random): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * The pixel indices by decreasing heatmap value. Ties (a CAM upsampled from a coarse layer, or
 * the zeros after its ReLU, has many) are broken by a random permutation, so a flat part of the
 * heatmap is removed in random order rather than in raster order.
 */
export function heatmapOrder(heatmap: ArrayLike<number>, random: Random): Int32Array {
  const n = heatmap.length;
  const tiebreak = new Float64Array(n);
  randomOrder(n, random).forEach((p, rank) => (tiebreak[p] = rank));
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const value = (i: number) => (Number.isNaN(heatmap[i]) ? -Infinity : heatmap[i]);
  order.sort((a, b) => value(b) - value(a) || tiebreak[a] - tiebreak[b]);
  return order;
}

/** Pixels changed after step j = 0..k: round(j·n/k). */
export function stepCounts(n: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, j) => Math.round((j * n) / steps));
}

/**
 * The k + 1 images of a curve, concatenated: image j is `from` with the first count_j pixels of
 * `order` (all their channels) taken from `to`. Deletion: from = the image, to = the baseline.
 * Insertion: from = the baseline, to = the image.
 */
export function curveImages(from: Float32Array, to: Float32Array, order: Int32Array, steps: number, channels: number): Float32Array {
  const size = from.length;
  if (to.length !== size) throw new RangeError(`curveImages: images differ in size (${size} vs ${to.length})`);
  if (order.length * channels !== size)
    throw new RangeError(`curveImages: ${order.length} pixels × ${channels} channels != ${size} values`);
  const counts = stepCounts(order.length, steps);
  const out = new Float32Array(size * (steps + 1));
  const current = from.slice();
  let done = 0;
  counts.forEach((count, j) => {
    for (; done < count; done++) {
      const p = order[done] * channels;
      for (let c = 0; c < channels; c++) current[p + c] = to[p + c];
    }
    out.set(current, j * size);
  });
  return out;
}

/** Scores `count` images stacked in one array (H·W·C each): S per image. */
export type BatchScorer = (images: Float32Array, count: number) => Promise<Float32Array>;

/** S along a deletion (from = image, to = baseline) or insertion (from = baseline, to = image) path: k + 1 values. */
export async function perturbationCurve(
  from: Float32Array,
  to: Float32Array,
  order: Int32Array,
  steps: number,
  channels: number,
  score: BatchScorer,
): Promise<Float32Array> {
  const images = curveImages(from, to, order, steps, channels);
  return score(images, steps + 1);
}

/** Area under a curve sampled at k + 1 equally spaced x in [0, 1] (trapezoidal rule). */
export function curveArea(curve: ArrayLike<number>): number {
  const k = curve.length - 1;
  if (k < 1) throw new RangeError('curveArea needs at least two points');
  let s = (curve[0] + curve[k]) / 2;
  for (let j = 1; j < k; j++) s += curve[j];
  return s / k;
}
