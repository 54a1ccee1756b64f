/**
 * Figures of the per-class report (class-stats.md): one dot-and-whisker chart per statistic — a
 * row per class in rank order, the mean as a dot and its 95 % bootstrap interval as a whisker —
 * drawn as PNG on the evaluation report's canvas (src/eval/canvas.ts: the project's font, no
 * plotting dependency, identical bytes everywhere).
 */
import type { RgbaImage } from '../image.js';
import { encodePng } from '../io/codec.js';
import { AXIS, Canvas, categorical, GRID, INK, ticks } from '../eval/canvas.js';
import { measureText, LINE_HEIGHT } from '../render/text.js';
import type { ClassStats, Estimate, StatName } from './stats.js';

export interface CiRow {
  label: string;
  estimate: Estimate;
}

export interface CiChartOptions {
  title: string;
  xLabel: string;
  rows: CiRow[];
  /** Default: the intervals' extent, widened to round ticks. */
  xRange?: [number, number];
  /** A vertical reference line (e.g. enrichment 1 = a uniform map). */
  refLine?: { value: number; label: string };
  width?: number;
}

/** Rows of mean ● with a whisker from lo to hi; a row without a value says "n/a". */
export function ciChart(o: CiChartOptions): RgbaImage {
  const s = 2;
  const rowH = 26;
  const labelW = Math.max(...o.rows.map((r) => measureText(r.label, s).width), 0) + 16;
  const width = Math.max(o.width ?? 760, labelW + 420, measureText(o.title, s).width + 40);
  const left = 16 + labelW;
  const right = width - 150;
  const top = 16 + LINE_HEIGHT * s + 14;
  const bottom = top + o.rows.length * rowH;
  const height = bottom + 16 + LINE_HEIGHT * s + 10 + LINE_HEIGHT * s + 14;
  const known = o.rows.flatMap((r) => [r.estimate.lo, r.estimate.hi, r.estimate.mean]).filter((v): v is number => v !== null);
  if (o.refLine) known.push(o.refLine.value);
  let [x0, x1] = o.xRange ?? [Math.min(...known, Infinity), Math.max(...known, -Infinity)];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (!o.xRange) {
    const t = ticks(x0, x1 > x0 ? x1 : x0 + 1e-3, 5);
    x0 = Math.min(x0, t[0].value);
    x1 = Math.max(x1, t[t.length - 1].value);
  }
  const X = (v: number) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left);
  const c = new Canvas(width, height);
  c.text(width / 2, 12, o.title, { align: 'center', scale: s });
  for (const t of ticks(x0, x1, 5)) {
    if (t.value < x0 - 1e-12 || t.value > x1 + 1e-12) continue;
    c.line(X(t.value), top - 4, X(t.value), bottom, GRID);
    c.text(X(t.value), bottom + 6, t.label, { align: 'center', scale: s });
  }
  c.line(left, bottom, right, bottom, AXIS);
  if (o.refLine) {
    c.line(X(o.refLine.value), top - 4, X(o.refLine.value), bottom, categorical(3), 2, [6, 4]);
    c.text(X(o.refLine.value), bottom + 8 + LINE_HEIGHT * s, o.refLine.label, { align: 'center', scale: 1, color: categorical(3) });
  }
  o.rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    c.text(left - 10, y, r.label, { align: 'right', middle: true, scale: s });
    const e = r.estimate;
    if (e.mean === null || e.lo === null || e.hi === null) {
      c.text(left + 4, y, 'n/a', { middle: true, scale: 1, color: AXIS });
      return;
    }
    const color = categorical(0);
    c.line(X(e.lo), y, X(e.hi), y, color, 2);
    c.line(X(e.lo), y - 6, X(e.lo), y + 6, color, 2);
    c.line(X(e.hi), y - 6, X(e.hi), y + 6, color, 2);
    c.marker(X(e.mean), y, 5, color, 'circle', INK);
    c.text(right + 12, y, `${e.mean.toFixed(3)} [${e.lo.toFixed(3)}, ${e.hi.toFixed(3)}]`, { middle: true, scale: 1 });
  });
  c.text(left + (right - left) / 2, height - 8 - LINE_HEIGHT * s, o.xLabel, { align: 'center', scale: s });
  return c.img;
}

interface Figure {
  file: string;
  stat: StatName;
  title: string;
  xLabel: string;
  xRange?: [number, number];
  refLine?: { value: number; label: string };
}

const FIGURES: Figure[] = [
  {
    file: 'class-context.png',
    stat: 'massOnContext',
    title: 'Heatmap mass on context (outside the GT object)',
    xLabel: 'mass on context, mean and 95 % bootstrap CI',
  },
  {
    file: 'class-enrichment.png',
    stat: 'objectEnrichment',
    title: 'Enrichment of the GT object',
    xLabel: 'mass in the object / its share of the image',
    refLine: { value: 1, label: 'uniform map' },
  },
  {
    file: 'class-pointing.png',
    stat: 'pointingHit',
    title: 'Pointing game (maximum inside the GT object)',
    xLabel: 'hit rate, mean and 95 % bootstrap CI',
  },
  {
    file: 'class-iou.png',
    stat: 'iou',
    title: 'IoU of the thresholded heatmap with the GT object',
    xLabel: 'IoU, mean and 95 % bootstrap CI',
  },
];

/** The report's figures as PNG bytes by file name, with their captions (classes in the given, ranked, order). */
export function classStatsFigures(classes: ClassStats[]): Array<{ file: string; caption: string; bytes: Uint8Array }> {
  return FIGURES.map((f) => ({
    file: f.file,
    caption: f.title,
    bytes: encodePng(
      ciChart({
        title: f.title,
        xLabel: f.xLabel,
        xRange: f.xRange,
        refLine: f.refLine,
        rows: classes.map((c) => ({ label: c.className ?? String(c.classIndex), estimate: c.stats[f.stat] })),
      }),
    ),
  }));
}

/** The figures' file names (in the output folder, beside class-stats.md). */
export const CLASS_FIGURE_FILES: string[] = FIGURES.map((f) => f.file);
