/**
 * ROAD pooled over several models (issue 15, parts 5 and 7): the replicated models of one arm of the
 * bias study each ran `runRoad` on the same tiles with the same conditions. Every headline number
 * is the mean over models of the mean over tiles, with a two-level percentile bootstrap interval
 * that resamples the models and, independently, the tiles — the same model draw and the same tile
 * draw for every condition and for the random order, so comparisons stay paired by model and tile.
 */
import { Rng } from '../../data/prng.js';
import { SegGradCamError } from '../../errors.js';
import { meanOf, percentileInterval } from '../bias-bootstrap.js';
import type { Interval } from '../bootstrap.js';
import { kendallTau } from '../rank-agreement.js';
import type { RoadResult, RoadVariant } from './road.js';

/** values[item][model][tile]: an item is a condition's measure (or a difference of two). */
export type ItemModelTile = number[][][];

export interface PooledOptions {
  resamples?: number;
  level?: number;
  seed?: number;
}

/**
 * Percentile interval of `stat(means)`, where means[i] is item i's mean over models of the per-model
 * tile means. Each replicate draws models and tiles with replacement once, for every item.
 */
export function pairedTwoLevel(items: ItemModelTile, stat: (means: number[]) => number, options: PooledOptions = {}): Interval {
  if (items.length === 0) throw new SegGradCamError('the bootstrap needs at least one item', 'shape');
  const models = items[0].length;
  const tiles = items[0][0]?.length ?? 0;
  if (models === 0 || tiles === 0) throw new SegGradCamError('the bootstrap needs at least one model and one tile', 'shape');
  for (const it of items) {
    if (it.length !== models) throw new SegGradCamError('every item must be measured on the same models', 'shape');
    for (const row of it) if (row.length !== tiles) throw new SegGradCamError('every model must be measured on the same tiles', 'shape');
  }
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = new Rng(options.seed ?? 0);
  const allM = Int32Array.from({ length: models }, (_, i) => i);
  const allT = Int32Array.from({ length: tiles }, (_, i) => i);
  const estimate = stat(items.map((it) => meanOf(it, allM, allT)));
  const m = new Int32Array(models);
  const t = new Int32Array(tiles);
  const reps: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < models; i++) m[i] = Math.floor(rng.next() * models);
    for (let i = 0; i < tiles; i++) t[i] = Math.floor(rng.next() * tiles);
    const v = stat(items.map((it) => meanOf(it, m, t)));
    if (Number.isFinite(v)) reps.push(v);
  }
  return percentileInterval(estimate, reps, level);
}

/** Mean of one item with its interval. */
export const pooledMean = (item: number[][], options?: PooledOptions): Interval => pairedTwoLevel([item], ([x]) => x, options);

/** a − b, paired by model and tile, with its interval. */
export const pooledDifference = (a: number[][], b: number[][], options?: PooledOptions): Interval =>
  pairedTwoLevel([a, b], ([x, y]) => x - y, options);

export interface PooledRoadCondition {
  label: string;
  empty: number;
  /** Mean curves over models and tiles (S/|M| after each step). */
  meanMorf: number[];
  meanLerf: number[];
  morf: Interval;
  lerf: Interval;
  gap: Interval;
  /** The condition minus the random order (paired): MoRF (negative = better), LeRF (positive = better). */
  morfVsRandom: Interval;
  lerfVsRandom: Interval;
  /** Per model: MoRF and LeRF areas (mean over tiles). */
  perModel: Array<{ morf: number; lerf: number }>;
}

export interface PooledRoadVariant {
  variant: RoadVariant;
  fractions: number[];
  random: { meanCurve: number[]; area: Interval; perModel: number[] };
  conditions: PooledRoadCondition[];
  /** Kendall's τ between the MoRF ranking (ascending area) and the LeRF ranking (descending area) of the conditions. */
  kendall: Interval & { morfRanking: string[]; lerfRanking: string[] };
  /** Per-model τ (the same statistic on each model's tile means). */
  kendallPerModel: number[];
}

export interface PooledRoad {
  models: number;
  tiles: number;
  variants: PooledRoadVariant[];
}

const meanRows = (rows: number[][]): number[] => {
  const out = new Array<number>(rows[0]?.length ?? 0).fill(0);
  for (const r of rows) r.forEach((v, j) => (out[j] += v / rows.length));
  return out;
};

/** Pools the ROAD results of several models that ran the same tiles and conditions. */
export function poolRoad(results: RoadResult[], options: PooledOptions = {}): PooledRoad {
  if (results.length === 0) throw new SegGradCamError('no ROAD results to pool', 'usage');
  const ref = results[0];
  for (const r of results) {
    if (r.tiles.join() !== ref.tiles.join()) throw new SegGradCamError('the models were not run on the same tiles', 'shape');
    if (
      r.variants.map((v) => v.conditions.map((c) => c.label).join()).join('|') !==
      ref.variants.map((v) => v.conditions.map((c) => c.label).join()).join('|')
    )
      throw new SegGradCamError('the models were not run with the same conditions', 'shape');
  }
  const variants = ref.variants.map((rv, vi): PooledRoadVariant => {
    const labels = rv.conditions.map((c) => c.label);
    const rand = results.map((r) => r.variants[vi].random.tiles.map((t) => t.area));
    const morf = labels.map((_, ci) => results.map((r) => r.variants[vi].conditions[ci].tiles.map((t) => t.morfArea)));
    const lerf = labels.map((_, ci) => results.map((r) => r.variants[vi].conditions[ci].tiles.map((t) => t.lerfArea)));
    const conditions = labels.map((label, ci): PooledRoadCondition => {
      const gap = morf[ci].map((row, mi) => row.map((v, ti) => lerf[ci][mi][ti] - v));
      const tilesOf = (r: RoadResult) => r.variants[vi].conditions[ci].tiles;
      return {
        label,
        empty: results.reduce((s, r) => s + r.variants[vi].conditions[ci].empty, 0),
        meanMorf: meanRows(results.map((r) => r.variants[vi].conditions[ci].meanMorf)),
        meanLerf: meanRows(results.map((r) => r.variants[vi].conditions[ci].meanLerf)),
        morf: pooledMean(morf[ci], options),
        lerf: pooledMean(lerf[ci], options),
        gap: pooledMean(gap, options),
        morfVsRandom: pooledDifference(morf[ci], rand, options),
        lerfVsRandom: pooledDifference(lerf[ci], rand, options),
        perModel: results.map((r) => {
          const t = tilesOf(r);
          return { morf: t.reduce((s, x) => s + x.morfArea, 0) / t.length, lerf: t.reduce((s, x) => s + x.lerfArea, 0) / t.length };
        }),
      };
    });
    const k = labels.length;
    const tauOf = (means: number[]) =>
      kendallTau(
        means.slice(0, k),
        means.slice(k).map((v) => -v),
      );
    const tau = k >= 2 ? pairedTwoLevel([...morf, ...lerf], tauOf, options) : { estimate: Number.NaN, low: Number.NaN, high: Number.NaN };
    return {
      variant: rv.variant,
      fractions: rv.fractions,
      random: {
        meanCurve: meanRows(results.map((r) => r.variants[vi].random.meanCurve)),
        area: pooledMean(rand, options),
        perModel: rand.map((row) => row.reduce((s, x) => s + x, 0) / row.length),
      },
      conditions,
      kendall: {
        ...tau,
        morfRanking: [...conditions].sort((a, b) => a.morf.estimate - b.morf.estimate).map((c) => c.label),
        lerfRanking: [...conditions].sort((a, b) => b.lerf.estimate - a.lerf.estimate).map((c) => c.label),
      },
      kendallPerModel: results.map((_, mi) =>
        k >= 2
          ? kendallTau(
              morf.map((c) => c[mi].reduce((s, x) => s + x, 0) / c[mi].length),
              lerf.map((c) => -c[mi].reduce((s, x) => s + x, 0) / c[mi].length),
            )
          : Number.NaN,
      ),
    };
  });
  return { models: results.length, tiles: ref.tiles.length, variants };
}

/**
 * One model's ROAD run made in chunks of tiles (same conditions and options; every tile's noise and
 * orders are seeded by its id, so chunking changes nothing) as one result: per-tile curves and areas
 * concatenated, means recomputed. The per-run comparisons (vsRandom, pairs, kendall) are left empty:
 * pool with poolRoad for intervals.
 */
export function concatRoad(chunks: RoadResult[]): RoadResult {
  if (chunks.length === 0) throw new SegGradCamError('no ROAD chunks to join', 'usage');
  const ref = chunks[0];
  const key = (r: RoadResult) => r.variants.map((v) => `${v.variant}:${v.conditions.map((c) => c.label).join()}`).join('|');
  for (const c of chunks)
    if (key(c) !== key(ref) || JSON.stringify(c.options) !== JSON.stringify(ref.options))
      throw new SegGradCamError('the chunks were not run with the same conditions and options', 'shape');
  const avg = (v: number[]) => v.reduce((s, x) => s + x, 0) / Math.max(1, v.length);
  const nan = { estimate: Number.NaN, low: Number.NaN, high: Number.NaN };
  return {
    ...ref,
    tiles: chunks.flatMap((c) => c.tiles),
    regionSize: chunks.flatMap((c) => c.regionSize),
    baseline: chunks.flatMap((c) => c.baseline),
    seconds: chunks.reduce((s, c) => s + c.seconds, 0),
    variants: ref.variants.map((v, vi) => {
      const conditions = v.conditions.map((c, ci) => {
        const tiles = chunks.flatMap((ch) => ch.variants[vi].conditions[ci].tiles);
        const morfArea = avg(tiles.map((t) => t.morfArea));
        const lerfArea = avg(tiles.map((t) => t.lerfArea));
        return {
          ...c,
          empty: chunks.reduce((s, ch) => s + ch.variants[vi].conditions[ci].empty, 0),
          tiles,
          meanMorf: meanRows(tiles.map((t) => t.morf)),
          meanLerf: meanRows(tiles.map((t) => t.lerf)),
          morfArea,
          lerfArea,
          gap: lerfArea - morfArea,
        };
      });
      const random = chunks.flatMap((ch) => ch.variants[vi].random.tiles);
      return {
        ...v,
        patches: chunks.flatMap((ch) => ch.variants[vi].patches),
        conditions,
        random: { tiles: random, meanCurve: meanRows(random.flatMap((r) => r.curves)), area: avg(random.map((r) => r.area)) },
        vsRandom: [],
        pairs: [],
        kendall: { ...nan, morfRanking: [], lerfRanking: [] },
      };
    }),
  };
}
