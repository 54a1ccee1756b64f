/**
 * Protocol: sanity checks (Adebayo et al. 2018; docs/evaluation/protocol.md, "Sanity checks").
 * The model's blocks are re-initialised from their initialisation distributions (every weight,
 * batch-norm moving statistics included: randomize.ts, reinitializeLayers), in two ways: cascading
 * from the output down, and each block alone (independent), for several seeds. After each step
 * every condition explains the same tiles again, and its map is compared with the trained model's
 * by signed and absolute Spearman rank correlation, SSIM and HOG correlation (similarity.ts). An
 * all-zero map has no ranking: such pairs are counted apart and never scored. The logit test
 * explains another class over the same M with the trained model: the map must differ. A condition
 * FAILS the cascading check when, with every block of the cascade re-initialised, its mean
 * absolute Spearman is still ≥ the threshold in magnitude (its map follows the image, not the
 * weights; a map that turned into its own negative ranking, ρ ≤ −threshold, follows it too).
 */
import type * as tf from '@tensorflow/tfjs';
import { hash32 } from '../../data/prng.js';
import { SegGradCamError } from '../../errors.js';
import type { Explainer } from '../../explain.js';
import { regionObjective } from '../../region/objective.js';
import { resizeLabelsNearest } from '../../render/resize.js';
import { imageToInput } from '../../preprocess.js';
import { pairedBootstrapCi, type Interval } from '../bootstrap.js';
import { cascadeSteps, reinitializeLayers, snapshotWeights, type CascadeStep, type ReinitRecord } from '../randomize.js';
import { similarity, type HogOptions, type Similarity, type SsimOptions } from '../similarity.js';
import {
  attributionMap,
  checkConditions,
  checkTile,
  type AttributionMap,
  type ProtocolCondition,
  type ProtocolTile,
} from './attribution.js';

export type SanityMode = 'cascading' | 'independent';

export interface SanityOptions {
  /** Re-initialisation seeds (default [1, 2, 3]). */
  seeds?: number[];
  /** Default both. */
  modes?: SanityMode[];
  /** The blocks to re-initialise (names from cascadeSteps, output first); default every block. */
  blocks?: string[];
  /** Run the logit test (default true). */
  logitTest?: boolean;
  /** The other class of the logit test for a tile (default: the runner-up class by S = Σ_M logits). */
  otherClass?: (tile: ProtocolTile) => number;
  /** Mean Spearman of the absolute maps at or above which a map counts as unchanged (default 0.5). */
  threshold?: number;
  ssim?: SsimOptions;
  hog?: HogOptions;
  resamples?: number;
  level?: number;
  /** Called after each explanation. */
  onProgress?: (done: number, total: number) => void;
}

/** Similarities of the scored (tile, seed) pairs, one value per pair. */
export interface SimilarityValues {
  spearman: number[];
  absSpearman: number[];
  ssim: number[];
  hog: number[];
}

export interface SanityStepResult {
  /** The block re-initialised at this step (cascading: it and every block before it). */
  block: string;
  /** Every layer re-initialised at this step. */
  layers: string[];
  /** Pairs scored: both maps not all-zero. */
  scored: number;
  /** Re-initialised maps that were all zeros (not scored). */
  emptyRandomised: number;
  values: SimilarityValues;
  /** The tile id of each scored pair, in the order of `values` (so results can be pooled per tile across models). */
  pairTiles: number[];
  /** Means over the scored pairs (NaN entries, e.g. a flat HOG, skipped). */
  mean: Similarity;
  /** Bootstrap interval over tiles (pairs averaged over seeds per tile first) of the mean Spearman of the absolute maps. */
  absSpearmanCi: Interval;
}

export type Verdict = 'pass' | 'fail' | 'undetermined';

export interface SanityConditionResult {
  label: string;
  method: string;
  layer: string;
  /** Tiles whose map on the trained model was all zeros (left out of every comparison). */
  emptyOriginal: number;
  cascading: SanityStepResult[];
  independent: SanityStepResult[];
  /** The logit test: the map for another class over the same M against the map for the class. */
  logit: (Omit<SanityStepResult, 'block' | 'layers'> & { otherClasses: number[] }) | null;
  verdict: {
    /** |Mean Spearman of the absolute maps| with every cascade block re-initialised < threshold. */
    cascading: Verdict;
    /** |Mean Spearman of the absolute maps| between the two classes' maps < threshold. */
    logit: Verdict;
    reason: string;
  };
}

export interface SanityResult {
  protocol: 'sanity';
  options: {
    seeds: number[];
    modes: SanityMode[];
    blocks: string[];
    logitTest: boolean;
    threshold: number;
    resamples: number;
    level: number;
  };
  /** The blocks (output first) and their layers. */
  steps: CascadeStep[];
  /** How each weight was re-initialised (for one seed; the same for every seed but the draws). */
  reinit: ReinitRecord[];
  tiles: number[];
  conditions: SanityConditionResult[];
  seconds: number;
}

const finiteMean = (v: number[]): number => {
  const f = v.filter(Number.isFinite);
  return f.length === 0 ? Number.NaN : f.reduce((s, x) => s + x, 0) / f.length;
};

/** Explanations a run costs: the originals, the re-initialised maps and the logit test. */
export function sanityCost(
  tiles: number,
  conditions: number,
  blocks: number,
  options: Pick<SanityOptions, 'seeds' | 'modes' | 'logitTest'> = {},
): number {
  const seeds = (options.seeds ?? [1, 2, 3]).length;
  const modes = (options.modes ?? ['cascading', 'independent']).length;
  return tiles * conditions * (1 + seeds * modes * blocks + (options.logitTest === false ? 0 : 1));
}

/** The runner-up class over M: the class c′ ≠ c with the largest S = Σ_M y^{c′} on the trained model. */
async function runnerUp(explainer: Explainer, tile: ProtocolTile): Promise<number> {
  const { height: H, width: W, channels: C } = explainer.adapter.input;
  const out = explainer.adapter.output;
  const classes = out.channels === 1 ? 2 : out.channels;
  const m = resizeLabelsNearest(tile.region, W, H, out.width, out.height);
  const x = imageToInput(tile.image, H, W, C, explainer.options);
  try {
    let best = -1;
    let bestScore = -Infinity;
    for (let k = 0; k < classes; k++) {
      if (k === tile.classId) continue;
      const s = (await explainer.adapter.scores(x, regionObjective(out, k, m, 'logits')))[0];
      if (s > bestScore) {
        bestScore = s;
        best = k;
      }
    }
    return best;
  } finally {
    x.dispose();
  }
}

class StepAccumulator {
  readonly values: SimilarityValues = { spearman: [], absSpearman: [], ssim: [], hog: [] };
  readonly perTile = new Map<number, number[]>();
  readonly pairTiles: number[] = [];
  scored = 0;
  emptyRandomised = 0;

  add(tile: number, original: AttributionMap, changed: AttributionMap, W: number, H: number, o: SanityOptions): void {
    if (changed.empty) {
      this.emptyRandomised++;
      return;
    }
    const s = similarity(original.map, changed.map, W, H, { ssim: o.ssim, hog: o.hog });
    this.scored++;
    this.values.spearman.push(s.spearman);
    this.values.absSpearman.push(s.absSpearman);
    this.values.ssim.push(s.ssim);
    this.values.hog.push(s.hog);
    this.pairTiles.push(tile);
    const row = this.perTile.get(tile) ?? [];
    row.push(s.absSpearman);
    this.perTile.set(tile, row);
  }

  result(boot: { resamples: number; level: number; seed: number }): Omit<SanityStepResult, 'block' | 'layers'> {
    const v = this.values;
    const tileMeans = [...this.perTile.values()].map(finiteMean).filter(Number.isFinite);
    return {
      scored: this.scored,
      emptyRandomised: this.emptyRandomised,
      values: v,
      pairTiles: this.pairTiles,
      mean: { spearman: finiteMean(v.spearman), absSpearman: finiteMean(v.absSpearman), ssim: finiteMean(v.ssim), hog: finiteMean(v.hog) },
      absSpearmanCi:
        tileMeans.length > 0
          ? pairedBootstrapCi(
              tileMeans,
              tileMeans.map(() => 0),
              boot,
            )
          : { estimate: Number.NaN, low: Number.NaN, high: Number.NaN },
    };
  }
}

/** Fails a mean correlation of either sign at or past the threshold: an inverted map still follows the image. */
export function verdictOf(mean: number, threshold: number): Verdict {
  if (!Number.isFinite(mean)) return 'undetermined';
  return Math.abs(mean) < threshold ? 'pass' : 'fail';
}

/**
 * Runs the sanity checks. The explainer's adapter must expose its TF.js LayersModel (weights are
 * re-initialised in place and restored at the end, also on error).
 */
export async function runSanityChecks(
  explainer: Explainer,
  tiles: ProtocolTile[],
  conditions: ProtocolCondition[],
  options: SanityOptions = {},
): Promise<SanityResult> {
  const started = performance.now();
  const model: tf.LayersModel | undefined = explainer.adapter.layersModel?.();
  if (!model) throw new SegGradCamError('the sanity checks re-initialise weights in place: they need a TF.js LayersModel', 'model');
  checkConditions(conditions);
  if (tiles.length === 0) throw new SegGradCamError('the sanity checks need at least one tile', 'usage');
  const { height: H, width: W } = explainer.adapter.input;
  for (const t of tiles) checkTile(t, W, H);
  const all = cascadeSteps(model);
  const blockNames = options.blocks ?? all.map((s) => s.name);
  for (const b of blockNames)
    if (!all.some((s) => s.name === b))
      throw new SegGradCamError(`unknown block '${b}'; blocks: ${all.map((s) => s.name).join(', ')}`, 'usage');
  const steps = all.filter((s) => blockNames.includes(s.name));
  const seeds = options.seeds ?? [1, 2, 3];
  const modes = options.modes ?? ['cascading', 'independent'];
  if (seeds.length === 0 || modes.length === 0) throw new SegGradCamError('give at least one seed and one mode', 'usage');
  const logitTest = options.logitTest ?? true;
  const threshold = options.threshold ?? 0.5;
  const boot = { resamples: options.resamples ?? 2000, level: options.level ?? 0.95, seed: seeds[0] };
  const total = sanityCost(tiles.length, conditions.length, steps.length, { seeds, modes, logitTest });
  let done = 0;
  const tick = () => options.onProgress?.(++done, total);

  // The trained model's maps (null when all zeros: such a tile is left out for that condition).
  const originals = conditions.map(() => [] as Array<AttributionMap | null>);
  const emptyOriginal = conditions.map(() => 0);
  const cascading = conditions.map(() => steps.map(() => new StepAccumulator()));
  const independent = conditions.map(() => steps.map(() => new StepAccumulator()));
  const logit = conditions.map(() => new StepAccumulator());
  const otherClasses: number[] = [];
  let reinit: ReinitRecord[] = [];

  const snapshot = snapshotWeights(model);
  try {
    explainer.release();
    for (const tile of tiles) {
      const other = logitTest ? (options.otherClass?.(tile) ?? (await runnerUp(explainer, tile))) : -1;
      if (logitTest) otherClasses.push(other);
      for (let ci = 0; ci < conditions.length; ci++) {
        const m = await attributionMap(explainer, tile, conditions[ci]);
        tick();
        originals[ci].push(m.empty ? null : m);
        if (m.empty) emptyOriginal[ci]++;
        if (logitTest) {
          const mo = await attributionMap(explainer, tile, conditions[ci], other);
          tick();
          if (!m.empty) logit[ci].add(tile.id, m, mo, W, H, options);
        }
      }
      explainer.release();
    }

    const explainAll = async (acc: StepAccumulator[][], step: number) => {
      explainer.release();
      for (let ti = 0; ti < tiles.length; ti++) {
        for (let ci = 0; ci < conditions.length; ci++) {
          const m = await attributionMap(explainer, tiles[ti], conditions[ci]);
          tick();
          const orig = originals[ci][ti];
          if (orig) acc[ci][step].add(tiles[ti].id, orig, m, W, H, options);
        }
        explainer.release();
      }
    };
    for (const seed of seeds) {
      if (modes.includes('cascading')) {
        for (let k = 0; k < steps.length; k++) {
          const records = reinitializeLayers(model, steps[k].layers, hash32(seed, 0x5a17));
          if (seed === seeds[0]) reinit = reinit.concat(records);
          await explainAll(cascading, k);
        }
        snapshot.restore();
      }
      if (modes.includes('independent')) {
        for (let k = 0; k < steps.length; k++) {
          const records = reinitializeLayers(model, steps[k].layers, hash32(seed, 0x5a17));
          if (seed === seeds[0] && !modes.includes('cascading')) reinit = reinit.concat(records);
          await explainAll(independent, k);
          snapshot.restore();
        }
      }
    }
  } finally {
    snapshot.restore();
    snapshot.dispose();
    explainer.release();
  }

  const results: SanityConditionResult[] = conditions.map((c, ci) => {
    const stepResults = (acc: StepAccumulator[], used: boolean): SanityStepResult[] =>
      used
        ? steps.map((s, k) => ({
            block: s.name,
            layers: modes.includes('cascading') && acc === cascading[ci] ? steps.slice(0, k + 1).flatMap((x) => x.layers) : s.layers,
            ...acc[k].result(boot),
          }))
        : [];
    const casc = stepResults(cascading[ci], modes.includes('cascading'));
    const ind = stepResults(independent[ci], modes.includes('independent'));
    const lg = logitTest ? { ...logit[ci].result(boot), otherClasses } : null;
    const last = casc[casc.length - 1];
    const cv: Verdict = last ? verdictOf(last.mean.absSpearman, threshold) : 'undetermined';
    const lv: Verdict = lg ? verdictOf(lg.mean.absSpearman, threshold) : 'undetermined';
    const reason = [
      last
        ? `with ${last.block} and every block above re-initialised, mean Spearman of |maps| ${last.mean.absSpearman} over ${last.scored} pairs (${last.emptyRandomised} empty maps)`
        : 'no cascade run',
      lg
        ? `another class over M: mean Spearman of |maps| ${lg.mean.absSpearman} over ${lg.scored} tiles (${lg.emptyRandomised} empty maps)`
        : 'no logit test',
    ].join('; ');
    return {
      label: c.label,
      method: c.attribute ? 'custom' : typeof c.method === 'string' ? c.method : (c.method?.name ?? 'seg-grad-cam'),
      layer: c.attribute ? 'n/a' : (c.layer ?? 'bottleneck'),
      emptyOriginal: emptyOriginal[ci],
      cascading: casc,
      independent: ind,
      logit: lg,
      verdict: { cascading: cv, logit: lv, reason: `${reason}; threshold ${threshold}` },
    };
  });
  return {
    protocol: 'sanity',
    options: { seeds, modes, blocks: steps.map((s) => s.name), logitTest, threshold, resamples: boot.resamples, level: boot.level },
    steps,
    reinit,
    tiles: tiles.map((t) => t.id),
    conditions: results,
    seconds: (performance.now() - started) / 1000,
  };
}
