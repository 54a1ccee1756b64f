/**
 * Bootstrap intervals for the bias study (issue 15), where every number is measured per model (a
 * seed of an arm) and per tile, and every model sees the same tiles: a two-level percentile
 * bootstrap that resamples the models of each arm with replacement and, independently, the tiles
 * with replacement, the same tile draw for every model and arm (so arm differences stay paired by
 * tile). With one model per arm it is the tile bootstrap of src/eval/bootstrap.ts.
 */
import { Rng } from '../data/prng.js';
import { SegGradCamError } from '../errors.js';
import type { Interval } from './bootstrap.js';

export interface TwoLevelOptions {
  resamples?: number;
  level?: number;
  seed?: number;
}

/** values[model][tile]; NaN entries are left out of the means. */
export type ByModelTile = number[][];

function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** Mean over the chosen models of the mean over the chosen tiles (NaN left out). */
export function meanOf(values: ByModelTile, models: ArrayLike<number>, tiles: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < models.length; i++) {
    const row = values[models[i]];
    let rs = 0;
    let rn = 0;
    for (let j = 0; j < tiles.length; j++) {
      const v = row[tiles[j]];
      if (Number.isFinite(v)) {
        rs += v;
        rn++;
      }
    }
    if (rn > 0) {
      s += rs / rn;
      n++;
    }
  }
  return n > 0 ? s / n : Number.NaN;
}

function check(groups: ByModelTile[]): number {
  const tiles = groups[0]?.[0]?.length ?? 0;
  for (const g of groups) {
    if (g.length === 0) throw new SegGradCamError('the bootstrap needs at least one model per arm', 'shape');
    for (const row of g) if (row.length !== tiles) throw new SegGradCamError('every model must be measured on the same tiles', 'shape');
  }
  if (tiles === 0) throw new SegGradCamError('the bootstrap needs at least one tile', 'shape');
  return tiles;
}

/**
 * Percentile interval of `stat(groups resampled)`: each group (an arm: values[model][tile]) gets its
 * models resampled independently; the tiles are resampled once per replicate for all groups.
 * `stat` receives, per group, the means over models of the per-model tile means.
 */
export function twoLevelBootstrap(groups: ByModelTile[], stat: (means: number[]) => number, options: TwoLevelOptions = {}): Interval {
  const tiles = check(groups);
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = new Rng(options.seed ?? 0);
  const all = Int32Array.from({ length: tiles }, (_, i) => i);
  const estimate = stat(groups.map((g) => meanOf(g, Int32Array.from(g.keys()), all)));
  const reps: number[] = [];
  const t = new Int32Array(tiles);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < tiles; i++) t[i] = Math.floor(rng.next() * tiles);
    const means = groups.map((g) => {
      const m = Int32Array.from({ length: g.length }, () => Math.floor(rng.next() * g.length));
      return meanOf(g, m, t);
    });
    const v = stat(means);
    if (Number.isFinite(v)) reps.push(v);
  }
  return percentileInterval(estimate, reps, level);
}

/** The estimate with the percentile interval of its bootstrap replicates (NaN bounds when there are none). */
export function percentileInterval(estimate: number, reps: number[], level: number): Interval {
  if (reps.length === 0) return { estimate, low: Number.NaN, high: Number.NaN };
  const sorted = Float64Array.from(reps).sort();
  const tail = (1 - level) / 2;
  return { estimate, low: quantile(sorted, tail), high: quantile(sorted, 1 - tail) };
}

/** Mean over models and tiles of one arm, with its two-level interval. */
export function armMeanCi(values: ByModelTile, options?: TwoLevelOptions): Interval {
  return twoLevelBootstrap([values], ([m]) => m, options);
}

/** Difference of two arms' means (a − b), tiles paired, with its two-level interval. */
export function armDifferenceCi(a: ByModelTile, b: ByModelTile, options?: TwoLevelOptions): Interval {
  return twoLevelBootstrap([a, b], ([x, y]) => x - y, options);
}

/**
 * AUROC of a score separating positive models' (model, tile) scores from negative models': the
 * probability that a positive score exceeds a negative one (ties 1/2), over every pair. Computed
 * from ranks (Mann–Whitney U); NaN scores are left out.
 */
export function pooledAuroc(pos: number[], neg: number[]): number {
  const p = pos.filter(Number.isFinite);
  const q = neg.filter(Number.isFinite);
  if (p.length === 0 || q.length === 0) return Number.NaN;
  const all = [...p.map((v) => ({ v, pos: true })), ...q.map((v) => ({ v, pos: false }))].sort((a, b) => a.v - b.v);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k].pos) rankSum += rank;
    i = j + 1;
  }
  return (rankSum - (p.length * (p.length + 1)) / 2) / (p.length * q.length);
}

/**
 * Model-level detection AUROC (biased models' (model, tile) scores against unbiased models') with a
 * two-level interval: models resampled within each arm, tiles resampled once for both (paired).
 */
export function aurocCi(pos: ByModelTile, neg: ByModelTile, options: TwoLevelOptions = {}): Interval {
  const tiles = check([pos, neg]);
  const gather = (g: ByModelTile, models: ArrayLike<number>, t: ArrayLike<number>): number[] => {
    const out: number[] = [];
    for (let i = 0; i < models.length; i++) for (let j = 0; j < t.length; j++) out.push(g[models[i]][t[j]]);
    return out;
  };
  const all = Int32Array.from({ length: tiles }, (_, i) => i);
  const estimate = pooledAuroc(gather(pos, Int32Array.from(pos.keys()), all), gather(neg, Int32Array.from(neg.keys()), all));
  const resamples = options.resamples ?? 500;
  const rng = new Rng(options.seed ?? 0);
  const reps: number[] = [];
  const t = new Int32Array(tiles);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < tiles; i++) t[i] = Math.floor(rng.next() * tiles);
    const mp = Int32Array.from({ length: pos.length }, () => Math.floor(rng.next() * pos.length));
    const mn = Int32Array.from({ length: neg.length }, () => Math.floor(rng.next() * neg.length));
    const v = pooledAuroc(gather(pos, mp, t), gather(neg, mn, t));
    if (Number.isFinite(v)) reps.push(v);
  }
  return percentileInterval(estimate, reps, options.level ?? 0.95);
}

/** Spearman's rank correlation with average ranks for ties (NaN pairs left out; NaN when a side is constant). */
export function spearman(a: number[], b: number[]): number {
  const pairs = a.map((v, i) => [v, b[i]] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const n = pairs.length;
  if (n < 3) return Number.NaN;
  const rank = (v: number[]): number[] => {
    const order = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(n);
    for (let i = 0; i < n;) {
      let j = i;
      while (j + 1 < n && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(pairs.map((p) => p[0]));
  const rb = rank(pairs.map((p) => p[1]));
  const ma = ra.reduce((s, x) => s + x, 0) / n;
  const mb = rb.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) ** 2;
    sbb += (rb[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : Number.NaN;
}
