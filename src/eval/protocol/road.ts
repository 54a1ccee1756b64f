/**
 * Protocol: ROAD faithfulness curves (Rong et al. 2022; docs/evaluation/protocol.md, "ROAD").
 * For every tile and condition, patches of one size are removed in the map's order — most relevant
 * first (MoRF) and least relevant first (LeRF) — and filled by noisy linear imputation; the score
 * the explanation explains, S = Σ_M y^c (logits of class c over M), is tracked after each step and
 * divided by |M| (the mean logit over M, so tiles of different M weigh alike; the order of
 * methods is that of S). Seeded random patch orders are the reference. Two variants: every pixel
 * removable ('full'), or only context pixels ('context': M is never removed). Per variant: mean
 * curves, the area under each (trapezoid over the removed fraction 0..1), paired bootstrap CIs over
 * tiles of each method against random and of every pair of methods, and Kendall's τ between the
 * MoRF and LeRF rankings of the methods. Numbers are returned unrounded.
 */
import * as tf from '@tensorflow/tfjs';
import { hash32, mulberry32 } from '../../data/prng.js';
import { SegGradCamError } from '../../errors.js';
import type { Explainer } from '../../explain.js';
import { imageToInput } from '../../preprocess.js';
import { regionObjective } from '../../region/objective.js';
import { resizeLabelsNearest } from '../../render/resize.js';
import { pairedBootstrapCi, type Interval } from '../bootstrap.js';
import { curveArea, randomOrder } from '../perturbation.js';
import { kendallTauBootstrap } from '../rank-agreement.js';
import { patchGrid, patchOrder, patchScores, roadImages } from '../road-order.js';
import { stringHash } from '../randomize.js';
import { attributionMap, checkConditions, checkTile, type ProtocolCondition, type ProtocolTile } from './attribution.js';

export type RoadVariant = 'full' | 'context';

export interface RoadOptions {
  /** Patch side in pixels, the same for every method and the random order (default 4). */
  patchSize?: number;
  /** Removal steps: fractions 0, 1/k, …, 1 of the patches (default 10). */
  steps?: number;
  /** Random patch orders per tile (default 2). */
  randomOrders?: number;
  /** Imputation noise, as a fraction of the model's input range (default 0.01, as ROAD). */
  noise?: number;
  seed?: number;
  /** Default both: 'full' (every pixel removable) and 'context' (only context pixels). */
  variants?: RoadVariant[];
  /** Bootstrap resamples (default 2000) and level (default 0.95). */
  resamples?: number;
  level?: number;
  /** Called after each tile × condition (and the tile's random orders). */
  onProgress?: (done: number, total: number) => void;
}

/** One tile's curves for a condition: S/|M| after each step (k + 1 values, step 0 = the image). */
export interface RoadTileCurves {
  tile: number;
  morf: number[];
  lerf: number[];
  morfArea: number;
  lerfArea: number;
}

export interface RoadConditionResult {
  label: string;
  method: string;
  layer: string;
  /** Tiles whose map was all zeros: their patches are removed in the seeded tie-break (random) order. */
  empty: number;
  tiles: RoadTileCurves[];
  /** Mean over tiles of the curves and areas. Lower MoRF area and higher LeRF area = more faithful. */
  meanMorf: number[];
  meanLerf: number[];
  morfArea: number;
  lerfArea: number;
  /** LeRF area − MoRF area (higher = more faithful; 0 for the random order). */
  gap: number;
}

export interface RoadRandomResult {
  /** Per tile: each random order's curve and the mean area over the orders. */
  tiles: Array<{ tile: number; curves: number[][]; area: number }>;
  meanCurve: number[];
  area: number;
}

/** A paired difference over tiles, a − b, with its percentile bootstrap interval. */
export interface RoadComparison {
  a: string;
  b: string;
  measure: 'morf' | 'lerf' | 'gap';
  estimate: number;
  low: number;
  high: number;
}

export interface RoadVariantResult {
  variant: RoadVariant;
  /** Removed fraction of the patches after each step: 0, 1/k, …, 1. */
  fractions: number[];
  /** Patches per tile (the context variant has fewer: patches without context pixels are left out). */
  patches: number[];
  conditions: RoadConditionResult[];
  random: RoadRandomResult;
  /** Each condition against the random order ('random' as b): morf, lerf and gap. */
  vsRandom: RoadComparison[];
  /** Every pair of conditions (a before b in the given order): morf, lerf and gap. */
  pairs: RoadComparison[];
  /**
   * Kendall's τ-b between the MoRF ranking (by MoRF area, ascending) and the LeRF ranking (by LeRF
   * area, descending) of the conditions, with a bootstrap interval over tiles; NaN with < 2 conditions.
   */
  kendall: Interval & { morfRanking: string[]; lerfRanking: string[] };
}

export interface RoadResult {
  protocol: 'road';
  options: {
    patchSize: number;
    steps: number;
    randomOrders: number;
    noise: number;
    seed: number;
    variants: RoadVariant[];
    resamples: number;
    level: number;
  };
  score: string;
  /** Tile ids, |M| on the output grid and S/|M| of the unchanged image, per tile. */
  tiles: number[];
  regionSize: number[];
  baseline: number[];
  variants: RoadVariantResult[];
  seconds: number;
}

const meanOf = (rows: number[][]): number[] => {
  const out = new Array<number>(rows[0]?.length ?? 0).fill(0);
  for (const r of rows) r.forEach((v, j) => (out[j] += v / rows.length));
  return out;
};
const avg = (v: number[]): number => v.reduce((s, x) => s + x, 0) / Math.max(1, v.length);

function methodName(c: ProtocolCondition): string {
  if (c.attribute) return 'custom';
  return typeof c.method === 'string' ? c.method : (c.method?.name ?? 'seg-grad-cam');
}

/**
 * Work a ROAD run costs: forward images scored (each after one imputation of a 64x64-like image)
 * and explanations. Per tile: 1 + variants × (randomOrders + 2·conditions) × steps images.
 */
export function roadCost(
  tiles: number,
  conditions: number,
  options: Pick<RoadOptions, 'steps' | 'randomOrders' | 'variants'> = {},
): { images: number; explanations: number } {
  const steps = options.steps ?? 10;
  const variants = (options.variants ?? ['full', 'context']).length;
  const random = options.randomOrders ?? 2;
  return { images: tiles * (1 + variants * (random + 2 * conditions) * steps), explanations: tiles * conditions };
}

/**
 * Runs ROAD on the tiles for each condition. The explainer's model must take the tiles' size. The
 * explainer's cached passes are released at the end.
 */
export async function runRoad(
  explainer: Explainer,
  tiles: ProtocolTile[],
  conditions: ProtocolCondition[],
  options: RoadOptions = {},
): Promise<RoadResult> {
  const started = performance.now();
  const o = {
    patchSize: options.patchSize ?? 4,
    steps: options.steps ?? 10,
    randomOrders: options.randomOrders ?? 2,
    noise: options.noise ?? 0.01,
    seed: options.seed ?? 0,
    variants: options.variants ?? (['full', 'context'] as RoadVariant[]),
    resamples: options.resamples ?? 2000,
    level: options.level ?? 0.95,
  };
  checkConditions(conditions);
  if (tiles.length === 0) throw new SegGradCamError('ROAD needs at least one tile', 'usage');
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new SegGradCamError(`steps must be a positive integer, got ${o.steps}`, 'usage');
  if (!Number.isInteger(o.randomOrders) || o.randomOrders < 1)
    throw new SegGradCamError(`randomOrders must be a positive integer, got ${o.randomOrders}`, 'usage');
  if (!Number.isInteger(o.patchSize) || o.patchSize < 1)
    throw new SegGradCamError(`the patch size must be a positive integer, got ${o.patchSize}`, 'usage');
  if (o.variants.length === 0 || o.variants.some((v) => v !== 'full' && v !== 'context'))
    throw new SegGradCamError(`variants must be 'full' and/or 'context', got ${o.variants.join(', ')}`, 'usage');
  const { height: H, width: W, channels: C } = explainer.adapter.input;
  for (const t of tiles) checkTile(t, W, H);
  const out = explainer.adapter.output;
  const [lo, hi] = explainer.options.inputRange ?? [0, 1];
  const noise = o.noise * (hi - lo);
  const condKeys = conditions.map((c) => stringHash(c.label));

  const perVariant = o.variants.map(() => ({
    patches: [] as number[],
    conds: conditions.map(() => ({ empty: 0, tiles: [] as RoadTileCurves[] })),
    random: [] as Array<{ tile: number; curves: number[][]; area: number }>,
  }));
  const regionSize: number[] = [];
  const baseline: number[] = [];
  const total = tiles.length * conditions.length;
  let done = 0;

  try {
    for (const tile of tiles) {
      const x = imageToInput(tile.image, H, W, C, explainer.options);
      const input = x.dataSync().slice() as Float32Array;
      x.dispose();
      const mOut = resizeLabelsNearest(tile.region, W, H, out.width, out.height);
      let mSize = 0;
      for (const v of mOut) if (v) mSize++;
      if (mSize === 0) throw new SegGradCamError(`tile ${tile.id}: M covers no output pixel`, 'region');
      const objective = regionObjective(out, tile.classId, mOut, 'logits');
      const score = async (images: Float32Array, count: number): Promise<number[]> => {
        const batch = tf.tensor4d(images, [count, H, W, C]);
        try {
          return Array.from(await explainer.adapter.scores(batch, objective), (s) => s / mSize);
        } finally {
          batch.dispose();
        }
      };
      const s0 = (await score(input, 1))[0];
      regionSize.push(mSize);
      baseline.push(s0);
      const maps = [];
      for (const c of conditions) maps.push(await attributionMap(explainer, tile, c));
      explainer.release();

      for (let vi = 0; vi < o.variants.length; vi++) {
        const variant = o.variants[vi];
        const removable = variant === 'full' ? undefined : Uint8Array.from(tile.context ?? tile.region.map((v) => (v ? 0 : 1)));
        if (removable) for (let p = 0; p < removable.length; p++) if (tile.region[p]) removable[p] = 0;
        const patches = patchGrid(W, H, o.patchSize, removable);
        if (patches.length === 0) throw new SegGradCamError(`tile ${tile.id}: no removable pixel for the ${variant} variant`, 'region');
        const pv = perVariant[vi];
        pv.patches.push(patches.length);
        const curve = async (order: Int32Array, tag: number): Promise<number[]> => {
          const images = roadImages(input, W, H, C, patches, order, o.steps, noise, (j) => hash32(o.seed, 0x20ad, tile.id, vi, tag, j));
          return [s0, ...(await score(images, o.steps))];
        };
        const curves: number[][] = [];
        for (let r = 0; r < o.randomOrders; r++)
          curves.push(await curve(randomOrder(patches.length, mulberry32(hash32(o.seed, 0x5eed, tile.id, vi, r))), 0x1000 + r));
        pv.random.push({ tile: tile.id, curves, area: avg(curves.map(curveArea)) });
        for (let ci = 0; ci < conditions.length; ci++) {
          const { map, empty } = maps[ci];
          const scores = patchScores(map, patches);
          const tiebreak = () => mulberry32(hash32(o.seed, 0x7e1b, tile.id, vi, condKeys[ci]));
          const morf = await curve(patchOrder(scores, 'morf', tiebreak()), 2 * ci);
          const lerf = await curve(patchOrder(scores, 'lerf', tiebreak()), 2 * ci + 1);
          const cr = pv.conds[ci];
          if (empty) cr.empty++;
          cr.tiles.push({ tile: tile.id, morf, lerf, morfArea: curveArea(morf), lerfArea: curveArea(lerf) });
        }
      }
      for (let ci = 0; ci < conditions.length; ci++) options.onProgress?.(++done, total);
    }
  } finally {
    explainer.release();
  }

  const boot = { resamples: o.resamples, level: o.level, seed: o.seed };
  const variants: RoadVariantResult[] = o.variants.map((variant, vi) => {
    const pv = perVariant[vi];
    const conds: RoadConditionResult[] = conditions.map((c, ci) => {
      const t = pv.conds[ci].tiles;
      const morfArea = avg(t.map((x) => x.morfArea));
      const lerfArea = avg(t.map((x) => x.lerfArea));
      return {
        label: c.label,
        method: methodName(c),
        layer: c.attribute ? 'n/a' : (c.layer ?? 'bottleneck'),
        empty: pv.conds[ci].empty,
        tiles: t,
        meanMorf: meanOf(t.map((x) => x.morf)),
        meanLerf: meanOf(t.map((x) => x.lerf)),
        morfArea,
        lerfArea,
        gap: lerfArea - morfArea,
      };
    });
    const randomArea = pv.random.map((r) => r.area);
    const measures = (c: RoadConditionResult) => ({
      morf: c.tiles.map((x) => x.morfArea),
      lerf: c.tiles.map((x) => x.lerfArea),
      gap: c.tiles.map((x) => x.lerfArea - x.morfArea),
    });
    const compare = (a: string, b: string, measure: RoadComparison['measure'], va: number[], vb: number[]): RoadComparison => ({
      a,
      b,
      measure,
      ...pairedBootstrapCi(va, vb, boot),
    });
    const vsRandom: RoadComparison[] = [];
    const zeros = randomArea.map(() => 0);
    for (const c of conds) {
      const m = measures(c);
      vsRandom.push(compare(c.label, 'random', 'morf', m.morf, randomArea));
      vsRandom.push(compare(c.label, 'random', 'lerf', m.lerf, randomArea));
      vsRandom.push(compare(c.label, 'random', 'gap', m.gap, zeros));
    }
    const pairs: RoadComparison[] = [];
    for (let i = 0; i < conds.length; i++)
      for (let j = i + 1; j < conds.length; j++) {
        const [a, b] = [measures(conds[i]), measures(conds[j])];
        for (const measure of ['morf', 'lerf', 'gap'] as const)
          pairs.push(compare(conds[i].label, conds[j].label, measure, a[measure], b[measure]));
      }
    const tau =
      conds.length >= 2
        ? kendallTauBootstrap(
            conds.map((c) => measures(c).morf),
            conds.map((c) => measures(c).lerf.map((v) => -v)),
            boot,
          )
        : { estimate: Number.NaN, low: Number.NaN, high: Number.NaN };
    return {
      variant,
      fractions: Array.from({ length: o.steps + 1 }, (_, j) => j / o.steps),
      patches: pv.patches,
      conditions: conds,
      random: { tiles: pv.random, meanCurve: meanOf(pv.random.flatMap((r) => r.curves)), area: avg(randomArea) },
      vsRandom,
      pairs,
      kendall: {
        ...tau,
        morfRanking: [...conds].sort((a, b) => a.morfArea - b.morfArea).map((c) => c.label),
        lerfRanking: [...conds].sort((a, b) => b.lerfArea - a.lerfArea).map((c) => c.label),
      },
    };
  });
  return {
    protocol: 'road',
    options: o,
    score: 'S/|M|: the sum of the class logit over M (the score the explanation explains) divided by |M| on the output grid',
    tiles: tiles.map((t) => t.id),
    regionSize,
    baseline,
    variants,
    seconds: (performance.now() - started) / 1000,
  };
}
