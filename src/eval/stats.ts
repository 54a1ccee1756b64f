/**
 * Small statistics for the evaluation, as pure functions on plain arrays: ranks with ties,
 * Spearman and Pearson correlation, the Mann–Whitney AUROC, and summaries.
 */

/** Ranks 1..n, tied values sharing the mean of their ranks (the "fractional" ranking). */
export function ranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => values[a] - values[b] || a - b);
  const r = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[idx[j + 1]] === values[idx[i]]) j++;
    const mean = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = mean;
    i = j + 1;
  }
  return r;
}

/** Pearson correlation; NaN when either side is constant (the correlation is undefined). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`pearson: lengths differ (${a.length} vs ${b.length})`);
  const n = a.length;
  if (n < 2) return Number.NaN;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return Number.NaN;
  return Math.max(-1, Math.min(1, sab / Math.sqrt(saa * sbb)));
}

/** Spearman rank correlation = Pearson correlation of the tie-averaged ranks; NaN for a constant input. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`spearman: lengths differ (${a.length} vs ${b.length})`);
  return pearson(ranks(a), ranks(b));
}

/**
 * AUROC of separating `positives` from `negatives` by their value (higher = positive):
 * P(p > n) + ½ P(p = n) over all pairs, the Mann–Whitney U statistic divided by |P|·|N|.
 * 1 = every positive above every negative, 0.5 = no separation, 0 = reversed. NaN if a side is empty.
 */
export function auroc(positives: ArrayLike<number>, negatives: ArrayLike<number>): number {
  const np = positives.length;
  const nn = negatives.length;
  if (np === 0 || nn === 0) return Number.NaN;
  const all = new Float64Array(np + nn);
  for (let i = 0; i < np; i++) all[i] = positives[i];
  for (let i = 0; i < nn; i++) all[np + i] = negatives[i];
  const r = ranks(all);
  let rankSum = 0;
  for (let i = 0; i < np; i++) rankSum += r[i];
  const u = rankSum - (np * (np + 1)) / 2;
  return u / (np * nn);
}

/** The values that are finite numbers (NaN marks "undefined" results, which summaries skip). */
export function finite(values: Iterable<number>): number[] {
  const out: number[] = [];
  for (const v of values) if (Number.isFinite(v)) out.push(v);
  return out;
}

/** Mean of the finite values; NaN when there are none. */
export function mean(values: Iterable<number>): number {
  const f = finite(values);
  return f.length === 0 ? Number.NaN : f.reduce((s, v) => s + v, 0) / f.length;
}

/** Sample standard deviation of the finite values; NaN for fewer than two. */
export function std(values: Iterable<number>): number {
  const f = finite(values);
  if (f.length < 2) return Number.NaN;
  const m = f.reduce((s, v) => s + v, 0) / f.length;
  return Math.sqrt(f.reduce((s, v) => s + (v - m) ** 2, 0) / (f.length - 1));
}

/** Median of the finite values; NaN when there are none. */
export function median(values: Iterable<number>): number {
  const f = finite(values).sort((a, b) => a - b);
  if (f.length === 0) return Number.NaN;
  const m = f.length >> 1;
  return f.length % 2 ? f[m] : (f[m - 1] + f[m]) / 2;
}
