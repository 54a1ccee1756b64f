/**
 * The counterfactual swap test (issue 15): does a model rely on the bias texture? Each tile's bias
 * background is replaced by another texture (channel means matched, the digit's pixels untouched)
 * and the model segments the tile again. Reliance shows as a drop of the bias digit's IoU between
 * the original and the swapped tiles (per tile, with a paired bootstrap CI), and as other digits
 * placed on the bias texture being labelled as the bias digit.
 */
import { SegGradCamError } from '../errors.js';
import type { RgbaImage } from '../image.js';
import { pairedBootstrapCi, type BootstrapOptions, type Interval } from './bootstrap.js';

/** A model as the swap test sees it: an image in, one class index per pixel out. */
export type Segmenter = (image: RgbaImage) => ArrayLike<number> | Promise<ArrayLike<number>>;

/**
 * `image` with the pixels where `mask` is 1 taken from `replacement`, shifted per channel so that
 * their mean over the mask equals the original's there (clamped to 0..255); other pixels unchanged.
 */
export function swapBackground(image: RgbaImage, mask: ArrayLike<number>, replacement: RgbaImage): RgbaImage {
  const n = image.width * image.height;
  if (mask.length !== n || replacement.width !== image.width || replacement.height !== image.height)
    throw new SegGradCamError('the mask and the replacement must have the image size', 'shape');
  const data = Uint8ClampedArray.from(image.data);
  let count = 0;
  const shift = [0, 0, 0];
  for (let p = 0; p < n; p++) {
    if (!mask[p]) continue;
    count++;
    for (let c = 0; c < 3; c++) shift[c] += image.data[p * 4 + c] - replacement.data[p * 4 + c];
  }
  if (count === 0) return { ...image, data };
  for (let p = 0; p < n; p++) {
    if (!mask[p]) continue;
    for (let c = 0; c < 3; c++) data[p * 4 + c] = Math.round(replacement.data[p * 4 + c] + shift[c] / count);
  }
  return { ...image, data };
}

/** IoU of class `c` between a ground truth and a prediction (NaN when both lack it). */
export function classIou(truth: ArrayLike<number>, predicted: ArrayLike<number>, c: number): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] === c;
    const p = predicted[i] === c;
    if (t && p) inter++;
    if (t || p) union++;
  }
  return union > 0 ? inter / union : Number.NaN;
}

export interface SwapTile {
  image: RgbaImage;
  /** Ground-truth class per pixel. */
  labels: ArrayLike<number>;
  /** The same tile with the bias texture replaced (one or more textures). */
  swapped: RgbaImage[];
}

export interface SwapResult {
  /** Per tile: the bias class's IoU on the original and the mean over its swapped versions. */
  original: number[];
  swapped: number[];
  /** IoU drop (original − swapped), mean over tiles with its paired bootstrap CI. */
  drop: Interval;
}

/** Runs the swap test of `segment` on `tiles` for the bias class. */
export async function swapTest(
  segment: Segmenter,
  tiles: SwapTile[],
  biasClass: number,
  bootstrap: BootstrapOptions = {},
): Promise<SwapResult> {
  const original: number[] = [];
  const swapped: number[] = [];
  for (const t of tiles) {
    if (t.swapped.length === 0) throw new SegGradCamError('a swap tile has no swapped version', 'usage');
    original.push(classIou(t.labels, await segment(t.image), biasClass));
    let sum = 0;
    for (const s of t.swapped) sum += classIou(t.labels, await segment(s), biasClass);
    swapped.push(sum / t.swapped.length);
  }
  return { original, swapped, drop: pairedBootstrapCi(original, swapped, bootstrap) };
}

/**
 * Among the pixels of other digits (ground truth neither background 0 nor the bias class) on tiles
 * that show the bias texture, the share the model labels as the bias class.
 */
export async function biasLabelRate(
  segment: Segmenter,
  tiles: Array<{ image: RgbaImage; labels: ArrayLike<number> }>,
  biasClass: number,
): Promise<number> {
  let digit = 0;
  let asBias = 0;
  for (const t of tiles) {
    const p = await segment(t.image);
    for (let i = 0; i < t.labels.length; i++) {
      if (t.labels[i] === 0 || t.labels[i] === biasClass) continue;
      digit++;
      if (p[i] === biasClass) asBias++;
    }
  }
  return digit > 0 ? asBias / digit : Number.NaN;
}
