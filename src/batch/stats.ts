/**
 * Scores of a heatmap against a ground-truth object, and their per-class aggregates.
 *
 * For a heatmap h ≥ 0 on the image, the region M and the ground-truth object G (both image-sized
 * 0/1 masks), with T = Σ h: mass in M = Σ_M h / T, mass in the object = Σ_G h / T, mass on context
 * = 1 − mass in the object (the share of the map outside G); the pointing game hits when the
 * heatmap's maximum (the first in raster order) lies in G; IoU = |{h ≥ t} ∩ G| / |{h ≥ t} ∪ G|.
 * Enrichment = mass in the object ÷ the object's share of the image (|G| / N): 1 for a uniform map,
 * above 1 when the map concentrates on the object — mass on context alone grows with the context's area.
 * An empty map (T = 0) has no masses and no pointing result (null), like M3d-CAM's empty maps.
 */
import { mulberry32 } from '../data/prng.js';

export interface GtStats {
  massInRegion: number | null;
  massInObject: number | null;
  massOnContext: number | null;
  objectEnrichment: number | null;
  pointingHit: boolean | null;
  iou: number | null;
}

export function gtStats(heatmap: Float32Array, region: Uint8Array, gt: Uint8Array, threshold: number): GtStats {
  let total = 0;
  let inRegion = 0;
  let inObject = 0;
  let best = -Infinity;
  let argmax = -1;
  let inter = 0;
  let union = 0;
  let area = 0;
  for (let i = 0; i < heatmap.length; i++) {
    if (gt[i]) area++;
    const h = heatmap[i];
    total += h;
    if (region[i]) inRegion += h;
    if (gt[i]) inObject += h;
    if (h > best) {
      best = h;
      argmax = i;
    }
    const on = h >= threshold ? 1 : 0;
    if (on && gt[i]) inter++;
    if (on || gt[i]) union++;
  }
  const empty = !(total > 0);
  return {
    massInRegion: empty ? null : inRegion / total,
    massInObject: empty ? null : inObject / total,
    massOnContext: empty ? null : 1 - inObject / total,
    objectEnrichment: empty || area === 0 ? null : inObject / total / (area / heatmap.length),
    pointingHit: empty ? null : gt[argmax] === 1,
    iou: union === 0 ? null : inter / union,
  };
}

export interface Estimate {
  n: number;
  mean: number | null;
  /** 95 % percentile-bootstrap interval of the mean. */
  lo: number | null;
  hi: number | null;
}

/** Mean of the values and its 95 % percentile bootstrap interval (`resamples` resamples, seeded). */
export function bootstrapMean(values: number[], resamples = 1000, seed = 0): Estimate {
  const n = values.length;
  if (n === 0) return { n, mean: null, lo: null, hi: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const rand = mulberry32(seed);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += values[Math.floor(rand() * n)];
    means[b] = s / n;
  }
  means.sort();
  const at = (q: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  return { n, mean, lo: at(0.025), hi: at(0.975) };
}

export const STAT_NAMES = ['massOnContext', 'massInObject', 'objectEnrichment', 'massInRegion', 'pointingHit', 'iou'] as const;
export type StatName = (typeof STAT_NAMES)[number];

export interface ClassStats {
  classIndex: number;
  className?: string;
  requests: number;
  stats: Record<StatName, Estimate>;
}

/** Per-class aggregates, ranked by mean context reliance (highest first; classes without a value last). */
export function aggregateByClass(
  rows: Array<{ classIndex: number; className?: string; stats?: GtStats }>,
  resamples = 1000,
  seed = 0,
): ClassStats[] {
  const byClass = new Map<number, { className?: string; stats: GtStats[] }>();
  for (const r of rows) {
    if (!r.stats) continue;
    const e = byClass.get(r.classIndex) ?? { className: r.className, stats: [] };
    e.stats.push(r.stats);
    byClass.set(r.classIndex, e);
  }
  const out: ClassStats[] = [];
  for (const [classIndex, { className, stats }] of byClass) {
    const est = {} as Record<StatName, Estimate>;
    for (const name of STAT_NAMES) {
      const values = stats
        .map((s) => s[name])
        .filter((v): v is number | boolean => v !== null)
        .map(Number);
      est[name] = bootstrapMean(values, resamples, seed);
    }
    out.push({ classIndex, className, requests: stats.length, stats: est });
  }
  const key = (c: ClassStats) => c.stats.massOnContext.mean ?? -Infinity;
  return out.sort((a, b) => key(b) - key(a) || a.classIndex - b.classIndex);
}

/** The aggregates as CSV (one row per class, in rank order; numbers unrounded). */
export function classStatsCsv(classes: ClassStats[]): string {
  const head = ['rank', 'class', 'name', 'requests', ...STAT_NAMES.flatMap((s) => [`${s}_n`, `${s}_mean`, `${s}_lo`, `${s}_hi`])];
  const cell = (v: string | number | null | undefined) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = classes.map((c, k) =>
    [
      k + 1,
      c.classIndex,
      c.className,
      c.requests,
      ...STAT_NAMES.flatMap((s) => [c.stats[s].n, c.stats[s].mean, c.stats[s].lo, c.stats[s].hi]),
    ]
      .map(cell)
      .join(','),
  );
  return [head.join(','), ...lines].join('\n') + '\n';
}

const LABELS: Record<StatName, string> = {
  massOnContext: 'mass on context',
  massInObject: 'mass in GT object',
  objectEnrichment: 'enrichment',
  massInRegion: 'mass in M',
  pointingHit: 'pointing game',
  iou: 'IoU',
};

/** The aggregates as a Markdown report: classes ranked by context reliance, each figure with its 95 % CI. */
export function classStatsMarkdown(
  classes: ClassStats[],
  iouThreshold: number,
  figures: Array<{ file: string; caption: string }> = [],
): string {
  const fmt = (e: Estimate) =>
    e.mean === null ? '–' : `${e.mean.toFixed(3)} [${(e.lo as number).toFixed(3)}, ${(e.hi as number).toFixed(3)}]`;
  const bar = (e: Estimate) => (e.mean === null ? '' : '█'.repeat(Math.round(e.mean * 20)));
  const lines = [
    '# Context reliance per class',
    '',
    `Classes ranked by the heatmap's mass outside the ground-truth object (highest first). Each cell: mean [95 % bootstrap CI]. enrichment = mass in the object ÷ its share of the image (1 = no concentration on the object); IoU of {heatmap ≥ ${iouThreshold}} with the object; pointing game = share of maps whose maximum lies in the object. Three decimals here; the CSV has the full values.`,
    '',
    `| rank | class | requests | ${STAT_NAMES.map((s) => LABELS[s]).join(' | ')} | context |`,
    `|---:|---|---:|${STAT_NAMES.map(() => '---').join('|')}|---|`,
    ...classes.map(
      (c, k) =>
        `| ${k + 1} | ${c.className ?? c.classIndex} | ${c.requests} | ${STAT_NAMES.map((s) => fmt(c.stats[s])).join(' | ')} | ${bar(c.stats.massOnContext)} |`,
    ),
    '',
    ...(figures.length > 0
      ? [
          '## Figures',
          '',
          'Classes in rank order; dot = mean, whisker = 95 % bootstrap CI.',
          '',
          ...figures.flatMap((f) => [`![${f.caption}](${f.file})`, '']),
        ]
      : []),
  ];
  return lines.join('\n');
}
