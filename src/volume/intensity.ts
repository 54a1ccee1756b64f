/**
 * Intensity preprocessing of a volume before the model reads it (pure functions on Float32Arrays;
 * a new array is returned, the input is never changed). What a model expects is the model's
 * training recipe: nnU-Net z-scores MRI per volume and clips CT to the 0.5–99.5 percentiles of
 * its training foreground before a z-score; many CT models read a Hounsfield window scaled to
 * [0, 1]. See docs/volumes.md.
 */
import { SegGradCamError } from '../errors.js';

/** The values selected by a mask (non-zero = in), or all of them. */
function selected(data: Float32Array, mask?: ArrayLike<number>): Float32Array {
  if (!mask) return data;
  if (mask.length !== data.length) throw new SegGradCamError(`the mask has ${mask.length} voxels, the volume ${data.length}`, 'shape');
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) if (mask[i] !== 0) out.push(data[i]);
  if (out.length === 0) throw new SegGradCamError('the mask selects no voxel', 'region');
  return Float32Array.from(out);
}

/**
 * (x − mean) / std over the volume (or the voxels of `mask`: statistics only, every voxel is
 * normalised), std the population standard deviation, floored at 1e-8 as nnU-Net does.
 */
export function zScore(data: Float32Array, options: { mask?: ArrayLike<number> } = {}): Float32Array {
  const v = selected(data, options.mask);
  if (v.length === 0) throw new SegGradCamError('an empty volume has no statistics', 'shape');
  let sum = 0;
  for (const x of v) sum += x;
  const mean = sum / v.length;
  let sq = 0;
  for (const x of v) sq += (x - mean) * (x - mean);
  const std = Math.max(Math.sqrt(sq / v.length), 1e-8);
  return Float32Array.from(data, (x) => (x - mean) / std);
}

/** The p-th percentile (0–100) with linear interpolation between order statistics (numpy's default). */
export function percentile(data: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new SegGradCamError(`a percentile is between 0 and 100, not ${p}`, 'usage');
  if (data.length === 0) throw new SegGradCamError('an empty volume has no percentiles', 'shape');
  const s = Float64Array.from(data).sort();
  const at = (p / 100) * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (at - lo) * (s[hi] - s[lo]);
}

/** Values clipped to [P_lo, P_hi] of the volume (or of the voxels of `mask`); defaults 0.5 and 99.5. */
export function clipPercentiles(data: Float32Array, options: { low?: number; high?: number; mask?: ArrayLike<number> } = {}): Float32Array {
  const low = options.low ?? 0.5;
  const high = options.high ?? 99.5;
  if (!(low < high)) throw new SegGradCamError(`the low percentile (${low}) must be below the high one (${high})`, 'usage');
  const v = selected(data, options.mask);
  const a = percentile(v, low);
  const b = percentile(v, high);
  return Float32Array.from(data, (x) => Math.min(Math.max(x, a), b));
}

/** Common CT windows (level, width) in Hounsfield units, as radiology references list them. */
export const CT_WINDOWS: Readonly<Record<string, { level: number; width: number }>> = {
  brain: { level: 40, width: 80 },
  'soft-tissue': { level: 50, width: 400 },
  lung: { level: -600, width: 1500 },
  bone: { level: 400, width: 1800 },
};

/** A CT window: values clipped to [level − width/2, level + width/2], then mapped linearly onto [0, 1]. */
export function ctWindow(data: Float32Array, window: { level: number; width: number } | string): Float32Array {
  const w = typeof window === 'string' ? CT_WINDOWS[window] : window;
  if (!w) throw new SegGradCamError(`unknown CT window '${String(window)}' (${Object.keys(CT_WINDOWS).join(', ')})`, 'usage');
  if (!(w.width > 0)) throw new SegGradCamError(`a window width must be positive, not ${w.width}`, 'usage');
  const lo = w.level - w.width / 2;
  return Float32Array.from(data, (x) => Math.min(Math.max((x - lo) / w.width, 0), 1));
}
