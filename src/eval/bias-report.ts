/**
 * The bias study's report (issue 15): aggregates the per-model studies (src/eval/bias-study.ts)
 * per arm — the gate first, then Hoyer's metrics per method × layer, the per-tile Spearman with
 * the counterfactual effect and the model-level detection AUROC — with two-level (models × tiles)
 * bootstrap intervals, and writes them as Markdown plus unrounded JSON.
 */
import { Rng } from '../data/prng.js';
import { armMeanCi, aurocCi, spearman, type ByModelTile } from './bias-bootstrap.js';
import type { Interval } from './bootstrap.js';
import type { ModelStudy } from './bias-study.js';
import { judgeArms, GATE_TARGETS, type ArmGate } from './protocol/gate.js';
import type { TileMetrics } from './protocol/context-bias.js';

export const HOYER = {
  /** Hoyer et al. 2019, Table 1 (TextureMNIST, context bias localisation): gradient-based methods. */
  cblGradient: [0.45, 0.61] as [number, number],
  /** Grid saliency's CBL for strong / weak bias. */
  cblGridStrong: 0.95,
  cblGridWeak: 0.89,
};

type MetricKey = Exclude<keyof TileMetrics, 'empty'>;

export interface ArmMetric {
  arm: string;
  condition: string;
  metric: MetricKey;
  value: Interval;
}

export interface Detection {
  arm: string;
  condition: string;
  score: 'biasShare' | 'cbd';
  auroc: Interval | null;
  refused?: string;
}

export interface SpearmanRow {
  arm: string;
  condition: string;
  /** Mean over the arm's models of the per-model Spearman (context share vs counterfactual effect), with a tile-bootstrap interval. */
  rho: Interval;
}

export interface StudyReport {
  arms: ArmGate[];
  metrics: ArmMetric[];
  detection: Detection[];
  spearman: SpearmanRow[];
  /** CBD per arm, condition and test digit (mean over models). */
  cbdMatrix: Array<{ arm: string; condition: string; byDigit: number[] }>;
  conditions: string[];
}

const fmt = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '–');
const ci = (i: Interval | null | undefined, d = 3): string => (i ? `${fmt(i.estimate, d)} [${fmt(i.low, d)}, ${fmt(i.high, d)}]` : '–');

function rhoCi(models: ModelStudy[], condition: string, resamples = 300): Interval {
  const data = models.map((m) => ({ a: m.context!.metrics[condition].contextShare, b: m.context!.effect }));
  const rhoOf = (idx: ArrayLike<number>): number => {
    const v = data
      .map((d) =>
        spearman(
          Array.from(idx, (i) => d.a[i]),
          Array.from(idx, (i) => d.b[i]),
        ),
      )
      .filter(Number.isFinite);
    return v.length ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN;
  };
  const n = data[0].a.length;
  const estimate = rhoOf(Array.from({ length: n }, (_, i) => i));
  const rng = new Rng(17);
  const reps: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const v = rhoOf(Array.from({ length: n }, () => Math.floor(rng.next() * n)));
    if (Number.isFinite(v)) reps.push(v);
  }
  reps.sort((x, y) => x - y);
  const q = (p: number): number =>
    reps.length ? reps[Math.min(reps.length - 1, Math.max(0, Math.round(p * (reps.length - 1))))] : Number.NaN;
  return { estimate, low: q(0.025), high: q(0.975) };
}

/** Aggregates the studies of every model. */
export function aggregateStudy(models: ModelStudy[], bootstrap = { resamples: 2000, seed: 0 }): StudyReport {
  const arms = judgeArms(
    models.map((m) => m.gate),
    bootstrap,
  );
  const withContext = models.filter((m) => m.context);
  const conditions = withContext.length ? Object.keys(withContext[0].context!.metrics) : [];
  const byArm = (arm: string): ModelStudy[] => withContext.filter((m) => m.arm === arm);
  const armNames = arms.map((a) => a.arm);
  const keys: MetricKey[] = ['cbd', 'cbl', 'massMB', 'rankMB', 'biasShare', 'contextShare'];
  const values = (arm: string, condition: string, key: MetricKey): ByModelTile => byArm(arm).map((m) => m.context!.metrics[condition][key]);
  const metrics: ArmMetric[] = [];
  const spearmanRows: SpearmanRow[] = [];
  const cbdMatrix: StudyReport['cbdMatrix'] = [];
  for (const arm of armNames) {
    if (byArm(arm).length === 0) continue;
    for (const condition of conditions) {
      for (const metric of keys) metrics.push({ arm, condition, metric, value: armMeanCi(values(arm, condition, metric), bootstrap) });
      spearmanRows.push({ arm, condition, rho: rhoCi(byArm(arm), condition) });
      const rows = byArm(arm).map((m) => m.context!.cbdByDigit[condition] ?? []);
      const digits = rows[0]?.length ?? 0;
      cbdMatrix.push({
        arm,
        condition,
        byDigit: Array.from({ length: digits }, (_, d) => rows.reduce((s, r) => s + r[d], 0) / rows.length),
      });
    }
  }
  const detection: Detection[] = [];
  const none = byArm('none');
  for (const gate of arms) {
    if (gate.arm === 'none' || byArm(gate.arm).length === 0) continue;
    for (const condition of conditions)
      for (const score of ['biasShare', 'cbd'] as const) {
        if (!gate.reliance || none.length === 0) {
          detection.push({ arm: gate.arm, condition, score, auroc: null, refused: gate.verdict });
          continue;
        }
        detection.push({
          arm: gate.arm,
          condition,
          score,
          auroc: aurocCi(values(gate.arm, condition, score), values('none', condition, score), { resamples: 300 }),
        });
      }
  }
  return { arms, metrics, detection, spearman: spearmanRows, cbdMatrix, conditions };
}

/** Hoyer et al.'s CBL for the methods they report (gradient family: a range; grid saliency: one value per arm). */
export function hoyerReference(condition: string): { strong: [number, number]; weak: [number, number] } | undefined {
  const method = condition.split(' @ ')[0];
  if (method === 'grid-saliency')
    return { strong: [HOYER.cblGridStrong, HOYER.cblGridStrong], weak: [HOYER.cblGridWeak, HOYER.cblGridWeak] };
  if (['saliency', 'smoothgrad', 'integrated-gradients'].includes(method)) return { strong: HOYER.cblGradient, weak: HOYER.cblGradient };
  return undefined;
}

/** Where an interval lies against a reference figure or range: overlapping it, below or above. */
export function whereAgainst(v: Interval, ref: [number, number]): 'overlaps' | 'below' | 'above' {
  if (v.high < ref[0]) return 'below';
  if (v.low > ref[1]) return 'above';
  return 'overlaps';
}

/** Our CBL (strong and weak arms) beside Hoyer et al.'s for every condition they report. */
export function hoyerComparison(
  r: StudyReport,
): Array<{ condition: string; strong: [number, number]; weak: [number, number]; ours: { strong?: Interval; weak?: Interval } }> {
  const cbl = (arm: string, condition: string): Interval | undefined =>
    r.metrics.find((m) => m.arm === arm && m.condition === condition && m.metric === 'cbl')?.value;
  return r.conditions.flatMap((condition) => {
    const ref = hoyerReference(condition);
    return ref ? [{ condition, ...ref, ours: { strong: cbl('strong', condition), weak: cbl('weak', condition) } }] : [];
  });
}

/** The report as Markdown. `context` gives the header facts (command, timing, host, tiles). */
export function studyMarkdown(
  r: StudyReport,
  models: ModelStudy[],
  context: { command: string; seconds: number; host: string; tiles: number; otherTiles: number; testTiles: number; extra?: string[] },
): string {
  const md: string[] = [];
  const metric = (arm: string, condition: string, key: MetricKey): Interval | undefined =>
    r.metrics.find((m) => m.arm === arm && m.condition === condition && m.metric === key)?.value;
  const armList = r.arms.map((a) => a.arm);
  md.push('# Evaluation report: context bias with ground truth by construction', '');
  md.push(
    `Written by \`${context.command}\` in ${fmt(context.seconds / 60, 1)} min on ${context.host}. ` +
      `${models.length} models (models/bias/<arm>-seed<k>/, each trained from scratch by the command in its training.json), ` +
      `${context.tiles} held-out bias-digit tiles shared by every model, ${context.otherTiles} other-digit tiles, ${context.testTiles} tiles per test digit for the CBD matrix. ` +
      'The set and the protocol: docs/evaluation/protocol.md.',
    '',
    '**Reading the numbers.** Every `a [l, h]` is an estimate with its 95 % percentile bootstrap interval: two-level (the models of an arm resampled with replacement, and the tiles resampled with replacement, the same tile draw for every model and arm, so arm differences are paired by tile). With 3 seeds per arm the model level is coarse: read the intervals as “over these seeds and tiles”. No “±” appears in this report. ' +
      '**Re-runs on another host** give the same tiles, models and predictions; explanations agree to float rounding (wasm, single-threaded), so every figure should agree within 1e-3 (timings excepted); differences in the last digit are not findings.',
    '',
  );
  // 1. The gate.
  md.push('## 1. The gate: do the models rely on the bias?', '');
  md.push(
    'Counterfactual swap test (src/eval/swap.ts): the bias digit (3) on the bias texture (brick on one half of the background); the half is re-rendered in every other texture of the pool except the tile’s own background and fill, with the channel means matched over the half, the digit untouched. ' +
      'The drop is the bias digit’s IoU on the original minus its mean IoU on the swapped renderings, per tile. “Other digits” = the share of other digits’ pixels labelled 3 when they sit on the bias texture (and, in brackets after it, on the same tiles without it). ' +
      `Detection is scored only for an arm whose reliance is shown: lower CI bound of its drop minus the unbiased arm’s ≥ ${GATE_TARGETS.relianceLow}.`,
    '',
  );
  md.push(
    '| arm | seeds | IoU drop | drop − none | other digits labelled 3 on bias (off bias) | targets | verdict |',
    '|---|---|---:|---:|---:|---|---|',
  );
  for (const a of r.arms)
    md.push(
      `| ${a.arm} | ${a.seeds.join(', ')} | ${ci(a.drop)} | ${a.difference ? ci(a.difference) : '–'} | ${ci(a.otherRate)} (${fmt(a.otherRatePlain.estimate)}) | ${a.targets
        .map((t) => `${t.met ? 'met' : '**not met**'}: ${t.target}`)
        .join('; ')} | ${a.verdict} |`,
    );
  md.push('', 'Per model (tile bootstrap; training figures from training.json):', '');
  md.push(
    '| model | IoU(3) original → swapped | drop | other digits → 3 on / off bias | held-out mean IoU | IoU(3) | steps | training time |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const m of models) {
    const g = m.gate;
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    md.push(
      `| ${m.arm}-seed${m.seed} | ${fmt(mean(g.original))} → ${fmt(mean(g.swapped))} | ${ci(g.drop)} | ${fmt(g.otherRate)} / ${fmt(g.otherRatePlain)} | ${fmt(m.training.meanIou ?? NaN)} | ${fmt(m.training.biasIou ?? NaN)} | ${m.training.steps ?? '–'} | ${(m.training.wallSeconds ?? m.training.trainSeconds) ? `${fmt((m.training.wallSeconds ?? m.training.trainSeconds)! / 60, 1)} min` : '–'} |`,
    );
  }
  md.push('');
  if (r.conditions.length === 0) return md.join('\n') + '\n';

  // 2. Hoyer's metrics.
  md.push('## 2. Context bias localisation (CBL) and detection (CBD), per method × layer', '');
  md.push(
    'M = the bias digit’s pixels, class = digit 3, the heatmap scaled to [0, 1] (src/eval/context-metrics.ts). CBL = biased salient context / salient context (B = the background pixels of the bias half; chance 0.5). CBD = salient context / context. Means over the arm’s models and tiles. ' +
      `Hoyer et al. (2019) report CBL ${HOYER.cblGradient.join('–')} for gradient-based methods and ${HOYER.cblGridStrong} (strong) / ${HOYER.cblGridWeak} (weak) for grid saliency.`,
    '',
  );
  md.push(`| method @ layer | ${armList.map((a) => `CBL ${a}`).join(' | ')} |`, `|---|${armList.map(() => '---:').join('|')}|`);
  for (const c of r.conditions) md.push(`| ${c} | ${armList.map((a) => ci(metric(a, c, 'cbl'))).join(' | ')} |`);
  md.push('');
  const hoyer = hoyerComparison(r);
  if (hoyer.length) {
    md.push(
      '**Against Hoyer et al. (2019)** (their TextureMNIST, strong / weak bias; where our interval lies relative to their figure or range):',
      '',
    );
    md.push('| method @ layer | Hoyer strong | ours strong | Hoyer weak | ours weak |', '|---|---:|---:|---:|---:|');
    const cell = (v: Interval | undefined, ref: [number, number]): string => (v ? `${ci(v)} (${whereAgainst(v, ref)})` : '–');
    const refText = (ref: [number, number]): string => (ref[0] === ref[1] ? fmt(ref[0], 2) : `${fmt(ref[0], 2)}–${fmt(ref[1], 2)}`);
    for (const h of hoyer)
      md.push(
        `| ${h.condition} | ${refText(h.strong)} | ${cell(h.ours.strong, h.strong)} | ${refText(h.weak)} | ${cell(h.ours.weak, h.weak)} |`,
      );
    md.push('');
  }
  md.push(`| method @ layer | ${armList.map((a) => `CBD ${a}`).join(' | ')} |`, `|---|${armList.map(() => '---:').join('|')}|`);
  for (const c of r.conditions) md.push(`| ${c} | ${armList.map((a) => ci(metric(a, c, 'cbd'))).join(' | ')} |`);
  md.push('');
  md.push('### CBD matrix: bias digit 3 (rows: arm) × test digit (columns), each test digit on the bias texture', '');
  for (const c of r.conditions) {
    const rows = r.cbdMatrix.filter((x) => x.condition === c);
    if (!rows.length || rows[0].byDigit.length === 0) continue;
    md.push(
      `**${c}**`,
      '',
      `| arm | ${rows[0].byDigit.map((_, d) => `${d}`).join(' | ')} |`,
      `|---|${rows[0].byDigit.map(() => '---:').join('|')}|`,
    );
    for (const x of rows) md.push(`| ${x.arm} | ${x.byDigit.map((v) => fmt(v)).join(' | ')} |`);
    md.push('');
  }
  md.push('## 3. Relevance mass and rank accuracy on M ∪ B', '');
  md.push(
    'Relevance mass accuracy = positive heatmap mass inside M ∪ B over all positive mass; rank accuracy = share of M ∪ B among the |M ∪ B| highest pixels (ties shared out).',
    '',
  );
  md.push(
    `| method @ layer | ${armList.map((a) => `mass ${a}`).join(' | ')} | ${armList.map((a) => `rank ${a}`).join(' | ')} |`,
    `|---|${armList.map(() => '---:').join('|')}|${armList.map(() => '---:').join('|')}|`,
  );
  for (const c of r.conditions)
    md.push(
      `| ${c} | ${armList.map((a) => ci(metric(a, c, 'massMB'))).join(' | ')} | ${armList.map((a) => ci(metric(a, c, 'rankMB'))).join(' | ')} |`,
    );
  md.push('');
  md.push('## 4. Does the map follow the measured effect? Per-tile Spearman', '');
  md.push(
    'Per model: Spearman’s ρ between a tile’s context share of the map (positive mass outside M) and that tile’s counterfactual effect (drop of the mean digit-3 logit over M when the bias half is re-textured); mean over the arm’s models, tile-bootstrap interval.',
    '',
  );
  md.push(`| method @ layer | ${armList.map((a) => `ρ ${a}`).join(' | ')} |`, `|---|${armList.map(() => '---:').join('|')}|`);
  for (const c of r.conditions)
    md.push(`| ${c} | ${armList.map((a) => ci(r.spearman.find((s) => s.arm === a && s.condition === c)?.rho)).join(' | ')} |`);
  md.push('');
  md.push('## 5. Model-level detection: biased vs unbiased models', '');
  md.push(
    'AUROC separating the biased arm’s (model, tile) scores from the unbiased arm’s on the same tiles (Mann–Whitney over every pair; 0.5 = no separation), interval from the two-level bootstrap (models per arm × shared tiles). Scores: the share of positive mass on B, and CBD.',
    '',
  );
  const scored = [...new Set(r.detection.map((d) => d.arm))];
  md.push(
    `| method @ layer | ${scored.map((a) => `${a} vs none: share on B`).join(' | ')} | ${scored.map((a) => `${a} vs none: CBD`).join(' | ')} |`,
    `|---|${scored.map(() => '---:').join('|')}|${scored.map(() => '---:').join('|')}|`,
  );
  const det = (arm: string, c: string, score: 'biasShare' | 'cbd'): string => {
    const d = r.detection.find((x) => x.arm === arm && x.condition === c && x.score === score);
    return d?.auroc ? ci(d.auroc) : 'not scored';
  };
  for (const c of r.conditions)
    md.push(`| ${c} | ${scored.map((a) => det(a, c, 'biasShare')).join(' | ')} | ${scored.map((a) => det(a, c, 'cbd')).join(' | ')} |`);
  for (const a of r.arms.filter((x) => !x.reliance && x.arm !== 'none')) md.push('', `*${a.arm}*: ${a.verdict}.`);
  md.push('');
  for (const line of context.extra ?? []) md.push(line);
  return md.join('\n') + '\n';
}
