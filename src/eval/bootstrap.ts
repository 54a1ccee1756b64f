/**
 * Paired bootstrap confidence intervals (issue 15): both arms are measured on the same units (e.g.
 * the same tiles), so units are resampled with replacement and the statistic of the paired
 * differences is recomputed on each resample; the interval is the percentile interval of those
 * replicates (Efron & Tibshirani 1993, ch. 13).
 */
import { Rng } from '../data/prng.js';
import { SegGradCamError } from '../errors.js';

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  seed?: number;
  /** Statistic of the differences a_i − b_i (default: their mean). */
  statistic?: (differences: Float64Array) => number;
}

export interface Interval {
  estimate: number;
  low: number;
  high: number;
}

const meanOf = (v: Float64Array): number => v.reduce((s, x) => s + x, 0) / v.length;

/** The value below which a fraction q of the sorted values lies (linear interpolation between order statistics). */
function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** Percentile interval of the statistic of a_i − b_i over units resampled with replacement. */
export function pairedBootstrapCi(a: ArrayLike<number>, b: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  if (a.length !== b.length) throw new SegGradCamError(`paired samples differ in length (${a.length} vs ${b.length})`, 'shape');
  if (a.length === 0) throw new SegGradCamError('the bootstrap needs at least one pair', 'shape');
  const n = a.length;
  const diff = Float64Array.from({ length: n }, (_, i) => a[i] - b[i]);
  const stat = options.statistic ?? meanOf;
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = new Rng(options.seed ?? 0);
  const reps = new Float64Array(resamples);
  const sample = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) sample[i] = diff[Math.floor(rng.next() * n)];
    reps[r] = stat(sample);
  }
  reps.sort();
  const tail = (1 - level) / 2;
  return { estimate: stat(diff), low: quantile(reps, tail), high: quantile(reps, 1 - tail) };
}
