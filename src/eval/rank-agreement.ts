/**
 * Agreement of two rankings (issue 15, ROAD's MoRF/LeRF consistency): Kendall's τ-b, which
 * corrects for ties (Kendall 1945), and a bootstrap of it over the units (tiles) a ranking is
 * computed from.
 */
import { Rng } from '../data/prng.js';
import { SegGradCamError } from '../errors.js';
import type { Interval } from './bootstrap.js';

/**
 * Kendall's τ-b of paired values: (n_c − n_d) / √((n_0 − n_x)(n_0 − n_y)) over all pairs i < j,
 * n_c concordant, n_d discordant, n_0 = n(n−1)/2, n_x (n_y) pairs tied in x (y). NaN when x or y is
 * constant or a value is not finite (O(n²): rankings of a handful of methods).
 */
export function kendallTau(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new SegGradCamError(`kendallTau: lengths differ (${x.length} vs ${y.length})`, 'shape');
  const n = x.length;
  for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) return Number.NaN;
  let nc = 0;
  let nd = 0;
  let tx = 0;
  let ty = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign(x[i] - x[j]);
      const dy = Math.sign(y[i] - y[j]);
      if (dx === 0) tx++;
      if (dy === 0) ty++;
      if (dx !== 0 && dy !== 0) {
        if (dx === dy) nc++;
        else nd++;
      }
    }
  }
  const n0 = (n * (n - 1)) / 2;
  const denom = Math.sqrt((n0 - tx) * (n0 - ty));
  return denom === 0 ? Number.NaN : (nc - nd) / denom;
}

/**
 * τ between two rankings of K items that are each the mean over units of a per-unit score:
 * `a[k][u]`, `b[k][u]` (item k, unit u). The estimate uses all units; the percentile interval
 * resamples units with replacement (the same units for every item and both scores: paired).
 */
export function kendallTauBootstrap(
  a: ArrayLike<number>[],
  b: ArrayLike<number>[],
  options: { resamples?: number; level?: number; seed?: number } = {},
): Interval {
  const k = a.length;
  if (b.length !== k) throw new SegGradCamError('kendallTauBootstrap: the two sides rank different numbers of items', 'shape');
  const units = k > 0 ? a[0].length : 0;
  for (const side of [a, b])
    for (const row of side)
      if (row.length !== units) throw new SegGradCamError('kendallTauBootstrap: items have different numbers of units', 'shape');
  const meanOver = (rows: ArrayLike<number>[], pick: Int32Array) =>
    rows.map((row) => {
      let s = 0;
      for (const u of pick) s += row[u];
      return s / pick.length;
    });
  const all = Int32Array.from({ length: units }, (_, i) => i);
  const estimate = kendallTau(meanOver(a, all), meanOver(b, all));
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = new Rng(options.seed ?? 0);
  const reps: number[] = [];
  const pick = new Int32Array(units);
  for (let r = 0; r < resamples && units > 0; r++) {
    for (let i = 0; i < units; i++) pick[i] = Math.floor(rng.next() * units);
    const t = kendallTau(meanOver(a, pick), meanOver(b, pick));
    if (Number.isFinite(t)) reps.push(t);
  }
  if (reps.length === 0) return { estimate, low: Number.NaN, high: Number.NaN };
  reps.sort((p, q) => p - q);
  const q = (f: number) => {
    const pos = f * (reps.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(reps.length - 1, lo + 1);
    return reps[lo] + (pos - lo) * (reps[hi] - reps[lo]);
  };
  const tail = (1 - level) / 2;
  return { estimate, low: q(tail), high: q(1 - tail) };
}
