/**
 * The gate of the bias study (issue 15): before any explanation is scored, show that the models
 * rely on the bias. Per model, the counterfactual swap test (src/eval/swap.ts): the bias digit's IoU
 * on tiles with the bias texture against the same tiles with that half re-rendered in other
 * textures (channel means matched); and the rate at which other digits on the bias texture are
 * labelled as the bias digit (against the same tiles without it). Per arm, the means over its
 * models with two-level (models × tiles) bootstrap intervals, the difference to the unbiased arm
 * (tiles paired), the targets, and the verdict: an arm whose reliance is not shown is not
 * scored for detection.
 */
import type { RgbaImage } from '../../image.js';
import { armDifferenceCi, armMeanCi, type ByModelTile, type TwoLevelOptions } from '../bias-bootstrap.js';
import type { Interval } from '../bootstrap.js';
import { swapTest, type Segmenter, type SwapTile } from '../swap.js';

/** The targets. */
export const GATE_TARGETS = {
  /** strong arm: IoU drop at least this. */
  strongDrop: 0.4,
  /** unbiased arm: |IoU drop| at most this. */
  noneAbsDrop: 0.03,
  /** strong − none: lower CI bound at least this. */
  strongDifferenceLow: 0.3,
  /** weak arm: IoU drop in this band. */
  weakBand: [0.1, 0.3] as [number, number],
  /** strong arm: other digits on the bias texture labelled as the bias digit on at least this share of their pixels. */
  strongOtherRate: 0.2,
  /** Reliance is shown (detection is scored) when the lower CI bound of (arm − none) drop is at least this. */
  relianceLow: 0.1,
};

export interface LabelledTile {
  image: RgbaImage;
  labels: ArrayLike<number>;
}

export interface GateTiles {
  /** Bias-digit tiles on the bias texture with their swapped renderings. */
  swap: SwapTile[];
  /** Other digits on the bias texture. */
  others: LabelledTile[];
  /** The same other-digit tiles without the bias texture. */
  othersPlain: LabelledTile[];
}

export interface ModelGate {
  arm: string;
  seed: number;
  /** Per tile: bias-digit IoU on the original and (mean over) the swapped renderings. */
  original: number[];
  swapped: number[];
  /** Per tile: original − swapped. */
  drops: number[];
  drop: Interval;
  /** Per other-digit tile: share of its digit pixels labelled as the bias class, on and off the bias texture. */
  otherRates: number[];
  otherRatesPlain: number[];
  /** Pooled over pixels. */
  otherRate: number;
  otherRatePlain: number;
}

export interface ArmGate {
  arm: string;
  seeds: number[];
  drop: Interval;
  /** Drop of this arm − drop of the unbiased arm (absent for the unbiased arm itself, or without one). */
  difference?: Interval;
  otherRate: Interval;
  otherRatePlain: Interval;
  /** Each applicable target: its text and whether it is met. */
  targets: Array<{ target: string; met: boolean }>;
  /** Reliance shown: the arm is scored for detection. */
  reliance: boolean;
  /** Why (or why not). */
  verdict: string;
}

/** Per tile: digit pixels (ground truth neither background nor the bias class) and how many are labelled the bias class. */
async function otherTileRates(segment: Segmenter, tiles: LabelledTile[], biasClass: number): Promise<{ rates: number[]; pooled: number }> {
  const rates: number[] = [];
  let digit = 0;
  let asBias = 0;
  for (const t of tiles) {
    const p = await segment(t.image);
    let d = 0;
    let b = 0;
    for (let i = 0; i < t.labels.length; i++) {
      if (t.labels[i] === 0 || t.labels[i] === biasClass) continue;
      d++;
      if (p[i] === biasClass) b++;
    }
    rates.push(d > 0 ? b / d : Number.NaN);
    digit += d;
    asBias += b;
  }
  return { rates, pooled: digit > 0 ? asBias / digit : Number.NaN };
}

/** The swap test and the other-digit rates of one model. */
export async function gateModel(
  segment: Segmenter,
  tiles: GateTiles,
  biasClass: number,
  id: { arm: string; seed: number },
  bootstrap: { resamples?: number; seed?: number } = {},
): Promise<ModelGate> {
  const s = await swapTest(segment, tiles.swap, biasClass, bootstrap);
  const on = await otherTileRates(segment, tiles.others, biasClass);
  const off = await otherTileRates(segment, tiles.othersPlain, biasClass);
  return {
    ...id,
    original: s.original,
    swapped: s.swapped,
    drops: s.original.map((v, i) => v - s.swapped[i]),
    drop: s.drop,
    otherRates: on.rates,
    otherRatesPlain: off.rates,
    otherRate: on.pooled,
    otherRatePlain: off.pooled,
  };
}

const within = (v: number, [lo, hi]: [number, number]): boolean => v >= lo && v <= hi;

/**
 * Aggregates the models of each arm ('none' is the unbiased reference) and judges them against
 * the targets. Arms without a 'none' arm to compare with are never shown to rely on the bias.
 */
export function judgeArms(models: ModelGate[], options: TwoLevelOptions = {}): ArmGate[] {
  const arms = [...new Set(models.map((m) => m.arm))];
  const byArm = (arm: string): ModelGate[] => models.filter((m) => m.arm === arm);
  const drops = (arm: string): ByModelTile => byArm(arm).map((m) => m.drops);
  const hasNone = arms.includes('none');
  const T = GATE_TARGETS;
  return arms.map((arm) => {
    const ms = byArm(arm);
    const drop = armMeanCi(drops(arm), options);
    const difference = hasNone && arm !== 'none' ? armDifferenceCi(drops(arm), drops('none'), options) : undefined;
    const otherRate = armMeanCi(
      ms.map((m) => m.otherRates),
      options,
    );
    const otherRatePlain = armMeanCi(
      ms.map((m) => m.otherRatesPlain),
      options,
    );
    const targets: ArmGate['targets'] = [];
    if (arm === 'strong') {
      targets.push({ target: `IoU drop >= ${T.strongDrop}`, met: drop.estimate >= T.strongDrop });
      if (difference)
        targets.push({ target: `drop − none's drop: lower CI >= ${T.strongDifferenceLow}`, met: difference.low >= T.strongDifferenceLow });
      targets.push({
        target: `other digits on the bias texture labelled the bias digit >= ${T.strongOtherRate * 100} % of their pixels`,
        met: otherRate.estimate >= T.strongOtherRate,
      });
    } else if (arm === 'weak') targets.push({ target: `IoU drop in [${T.weakBand.join(', ')}]`, met: within(drop.estimate, T.weakBand) });
    else if (arm === 'none') targets.push({ target: `|IoU drop| <= ${T.noneAbsDrop}`, met: Math.abs(drop.estimate) <= T.noneAbsDrop });
    else if (arm === 'control')
      targets.push({ target: `IoU drop >= ${T.strongDrop} (reliance by construction)`, met: drop.estimate >= T.strongDrop });
    let reliance = false;
    let verdict: string;
    if (arm === 'none') verdict = 'the unbiased reference: not scored as biased';
    else if (!difference) verdict = 'no unbiased arm to compare with: reliance not shown, not scored';
    else if (difference.low >= T.relianceLow) {
      reliance = true;
      verdict = `reliance shown (lower CI of the drop difference to 'none' ${difference.low.toFixed(3)} >= ${T.relianceLow}): scored`;
    } else
      verdict = `reliance NOT shown (lower CI of the drop difference to 'none' ${difference.low.toFixed(3)} < ${T.relianceLow}): detection not scored for this arm`;
    return { arm, seeds: ms.map((m) => m.seed), drop, difference, otherRate, otherRatePlain, targets, reliance, verdict };
  });
}
