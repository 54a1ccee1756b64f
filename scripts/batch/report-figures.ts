/**
 * Redraws a report's figures and Markdown from its class-stats.csv (the full, unrounded
 * estimates), without running the batch again: the same bytes as `finalizeDataset` writes for
 * those statistics. Used when the statistics are committed but a re-run is too slow for the host.
 * Run: node --import tsx scripts/batch/report-figures.ts docs/batch-report [iouThreshold=0.5]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { classStatsFigures } from '../../src/batch/report-plots.js';
import { classStatsMarkdown, STAT_NAMES, type ClassStats, type Estimate } from '../../src/batch/stats.js';

const dir = process.argv[2] ?? 'docs/batch-report';
const iou = Number(process.argv[3] ?? 0.5);
const rows = parse(readFileSync(join(dir, 'class-stats.csv'), 'utf8'), { columns: true }) as Array<Record<string, string>>;
const num = (s: string) => (s === '' ? null : Number(s));
const classes: ClassStats[] = rows.map((r) => ({
  classIndex: Number(r.class),
  ...(r.name ? { className: r.name } : {}),
  requests: Number(r.requests),
  stats: Object.fromEntries(
    STAT_NAMES.map((s) => [
      s,
      { n: Number(r[`${s}_n`]), mean: num(r[`${s}_mean`]), lo: num(r[`${s}_lo`]), hi: num(r[`${s}_hi`]) } satisfies Estimate,
    ]),
  ) as ClassStats['stats'],
}));
const figures = classStatsFigures(classes);
for (const f of figures) writeFileSync(join(dir, f.file), f.bytes);
writeFileSync(join(dir, 'class-stats.md'), classStatsMarkdown(classes, iou, figures));
console.log(`${figures.length} figures and class-stats.md written to ${dir}`);
