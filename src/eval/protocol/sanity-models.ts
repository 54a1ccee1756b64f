/**
 * The sanity checks pooled over several models (issue 15, parts 6 and 7): each replicated model ran
 * `runSanityChecks` on the same tiles with the same conditions and randomisation seeds. Per model and
 * tile, a similarity is the mean over the seeds of the scored pairs (empty maps are never scored; a
 * tile with no scored pair is left out of that model's mean); headline numbers are means over models
 * of the tile means with the two-level interval of road-models.ts (models and tiles resampled).
 */
import { SegGradCamError } from '../../errors.js';
import type { Interval } from '../bootstrap.js';
import { pooledMean, type PooledOptions } from './road-models.js';
import { verdictOf, type SanityResult, type SanityStepResult, type SimilarityValues, type Verdict } from './sanity-checks.js';

export type SimilarityMeasure = keyof SimilarityValues;
export const MEASURES: SimilarityMeasure[] = ['spearman', 'absSpearman', 'ssim', 'hog'];

export interface PooledStep {
  block: string;
  /** Pairs scored and re-initialised maps left out as empty, summed over models. */
  scored: number;
  emptyRandomised: number;
  similarity: Record<SimilarityMeasure, Interval>;
}

export interface PooledSanityCondition {
  label: string;
  emptyOriginal: number;
  cascading: PooledStep[];
  independent: PooledStep[];
  logit: PooledStep | null;
  verdict: { cascading: Verdict; logit: Verdict };
  /** Per model: the mean |Spearman| with every block re-initialised, and the logit test's. */
  perModel: Array<{ cascadeAbsSpearman: number; logitAbsSpearman: number }>;
}

export interface PooledSanity {
  models: number;
  tiles: number;
  seeds: number[];
  blocks: string[];
  threshold: number;
  conditions: PooledSanityCondition[];
}

/** Per tile (in `tiles` order) the mean over that tile's scored pairs of one measure; NaN if none. */
export function tileMeans(step: Pick<SanityStepResult, 'values' | 'pairTiles'>, tiles: number[], measure: SimilarityMeasure): number[] {
  const index = new Map(tiles.map((t, i) => [t, i]));
  const sum = new Float64Array(tiles.length);
  const n = new Int32Array(tiles.length);
  const v = step.values[measure];
  if (step.pairTiles.length !== v.length) throw new SegGradCamError('a sanity step has no tile id per scored pair', 'shape');
  step.pairTiles.forEach((t, k) => {
    const i = index.get(t);
    if (i === undefined) throw new SegGradCamError(`a scored pair names tile ${t}, which is not in the run`, 'shape');
    if (Number.isFinite(v[k])) {
      sum[i] += v[k];
      n[i]++;
    }
  });
  return Array.from(sum, (s, i) => (n[i] > 0 ? s / n[i] : Number.NaN));
}

/** Pools the sanity results of several models that ran the same tiles, conditions, seeds and blocks. */
export function poolSanity(results: SanityResult[], options: PooledOptions = {}): PooledSanity {
  if (results.length === 0) throw new SegGradCamError('no sanity results to pool', 'usage');
  const ref = results[0];
  for (const r of results) {
    if (r.tiles.join() !== ref.tiles.join()) throw new SegGradCamError('the models were not run on the same tiles', 'shape');
    if (r.conditions.map((c) => c.label).join() !== ref.conditions.map((c) => c.label).join())
      throw new SegGradCamError('the models were not run with the same conditions', 'shape');
    if (r.options.blocks.join() !== ref.options.blocks.join()) throw new SegGradCamError('the models have different blocks', 'shape');
  }
  const tiles = ref.tiles;
  const pool = (steps: Array<Omit<SanityStepResult, 'block' | 'layers'>>, block: string): PooledStep => ({
    block,
    scored: steps.reduce((s, x) => s + x.scored, 0),
    emptyRandomised: steps.reduce((s, x) => s + x.emptyRandomised, 0),
    similarity: Object.fromEntries(
      MEASURES.map((m) => [
        m,
        pooledMean(
          steps.map((x) => tileMeans(x, tiles, m)),
          options,
        ),
      ]),
    ) as Record<SimilarityMeasure, Interval>,
  });
  const conditions = ref.conditions.map((c, ci): PooledSanityCondition => {
    const of = (r: SanityResult) => r.conditions[ci];
    const cascading = c.cascading.map((s, k) =>
      pool(
        results.map((r) => of(r).cascading[k]),
        s.block,
      ),
    );
    const independent = c.independent.map((s, k) =>
      pool(
        results.map((r) => of(r).independent[k]),
        s.block,
      ),
    );
    const logit = c.logit
      ? pool(
          results.map((r) => of(r).logit!),
          'another class',
        )
      : null;
    const last = cascading[cascading.length - 1];
    return {
      label: c.label,
      emptyOriginal: results.reduce((s, r) => s + of(r).emptyOriginal, 0),
      cascading,
      independent,
      logit,
      verdict: {
        cascading: last ? verdictOf(last.similarity.absSpearman.estimate, ref.options.threshold) : 'undetermined',
        logit: logit ? verdictOf(logit.similarity.absSpearman.estimate, ref.options.threshold) : 'undetermined',
      },
      perModel: results.map((r) => {
        const cc = of(r);
        return {
          cascadeAbsSpearman: cc.cascading[cc.cascading.length - 1]?.mean.absSpearman ?? Number.NaN,
          logitAbsSpearman: cc.logit?.mean.absSpearman ?? Number.NaN,
        };
      }),
    };
  });
  return {
    models: results.length,
    tiles: tiles.length,
    seeds: ref.options.seeds,
    blocks: ref.options.blocks,
    threshold: ref.options.threshold,
    conditions,
  };
}

/**
 * One model's sanity runs split by seed (same tiles, conditions and blocks) as one result: the
 * scored pairs of every run concatenated (their seeds too); the trained model's maps and the logit
 * test do not depend on the seed, so they come from the first run.
 */
export function mergeSeedRuns(runs: SanityResult[]): SanityResult {
  return mergeRuns(runs, 'seeds');
}

/**
 * One model's sanity run made in chunks of tiles (same seeds, conditions and blocks) as one result:
 * tiles, scored pairs, empty counts and the logit test concatenated.
 */
export function mergeTileChunks(chunks: SanityResult[]): SanityResult {
  return mergeRuns(chunks, 'tiles');
}

function mergeRuns(runs: SanityResult[], by: 'seeds' | 'tiles'): SanityResult {
  if (runs.length === 0) throw new SegGradCamError('no sanity runs to merge', 'usage');
  const ref = runs[0];
  for (const r of runs) {
    if (by === 'seeds' && r.tiles.join() !== ref.tiles.join())
      throw new SegGradCamError('the runs were not made on the same tiles', 'shape');
    if (by === 'tiles' && r.options.seeds.join() !== ref.options.seeds.join())
      throw new SegGradCamError('the chunks were not made with the same seeds', 'shape');
    if (r.conditions.map((c) => c.label).join() !== ref.conditions.map((c) => c.label).join())
      throw new SegGradCamError('the runs were not made with the same conditions', 'shape');
    if (r.options.blocks.join() !== ref.options.blocks.join()) throw new SegGradCamError('the runs have different blocks', 'shape');
  }
  const seeds = by === 'seeds' ? runs.flatMap((r) => r.options.seeds) : ref.options.seeds;
  const tiles = by === 'tiles' ? runs.flatMap((r) => r.tiles) : ref.tiles;
  if (new Set(tiles).size !== tiles.length) throw new SegGradCamError('a tile appears in two chunks', 'usage');
  if (new Set(seeds).size !== seeds.length) throw new SegGradCamError(`a seed appears in two runs (${seeds.join(', ')})`, 'usage');
  const finiteMean = (v: number[]) => {
    const f = v.filter(Number.isFinite);
    return f.length ? f.reduce((s, x) => s + x, 0) / f.length : Number.NaN;
  };
  const merge = (steps: SanityStepResult[]): SanityStepResult => {
    const values = Object.fromEntries(MEASURES.map((m) => [m, steps.flatMap((s) => s.values[m])])) as unknown as SimilarityValues;
    return {
      ...steps[0],
      scored: steps.reduce((s, x) => s + x.scored, 0),
      emptyRandomised: steps.reduce((s, x) => s + x.emptyRandomised, 0),
      values,
      pairTiles: steps.flatMap((s) => s.pairTiles),
      mean: {
        spearman: finiteMean(values.spearman),
        absSpearman: finiteMean(values.absSpearman),
        ssim: finiteMean(values.ssim),
        hog: finiteMean(values.hog),
      },
      // the per-run tile bootstrap does not carry over: pool with poolSanity for intervals
      absSpearmanCi: { estimate: Number.NaN, low: Number.NaN, high: Number.NaN },
    };
  };
  return {
    ...ref,
    options: { ...ref.options, seeds },
    tiles,
    conditions: ref.conditions.map((c, ci) => {
      const cascading = c.cascading.map((_, k) => merge(runs.map((r) => r.conditions[ci].cascading[k])));
      const last = cascading[cascading.length - 1];
      // the trained maps and the logit test do not depend on the seed: from the first run unless merging tiles
      const logit =
        by === 'tiles' && c.logit
          ? {
              ...merge(runs.map((r) => ({ ...r.conditions[ci].logit!, block: '', layers: [] }))),
              otherClasses: runs.flatMap((r) => r.conditions[ci].logit!.otherClasses),
            }
          : c.logit;
      const lv = logit ? verdictOf(logit.mean.absSpearman, ref.options.threshold) : 'undetermined';
      return {
        ...c,
        emptyOriginal: by === 'tiles' ? runs.reduce((s, r) => s + r.conditions[ci].emptyOriginal, 0) : c.emptyOriginal,
        cascading,
        independent: c.independent.map((_, k) => merge(runs.map((r) => r.conditions[ci].independent[k]))),
        logit:
          logit && by === 'tiles'
            ? (({ block: _b, layers: _l, ...rest }) => rest)(logit as typeof logit & { block: string; layers: string[] })
            : logit,
        verdict: { ...c.verdict, cascading: last ? verdictOf(last.mean.absSpearman, ref.options.threshold) : 'undetermined', logit: lv },
      };
    }),
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
  };
}
