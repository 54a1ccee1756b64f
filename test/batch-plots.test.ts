/** The report's figures: PNGs referenced from the Markdown, whiskers as wide as the intervals they draw. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeImage } from '../src/io/codec.js';
import { ciChart, CLASS_FIGURE_FILES, classStatsFigures } from '../src/batch/report-plots.js';
import { classStatsMarkdown, STAT_NAMES, type ClassStats, type Estimate } from '../src/batch/stats.js';

const BLUE = [31, 119, 180]; // categorical(0): dots and whiskers

/** Horizontal extent (max x − min x) of the whisker colour in each horizontal band holding it, top to bottom. */
function whiskerWidths(img: { width: number; height: number; data: Uint8Array | Uint8ClampedArray }): number[] {
  const bands: Array<{ y1: number; x0: number; x1: number }> = [];
  for (let y = 0; y < img.height; y++) {
    let x0 = Infinity;
    let x1 = -Infinity;
    for (let x = 0; x < img.width; x++) {
      const p = (y * img.width + x) * 4;
      if (img.data[p] === BLUE[0] && img.data[p + 1] === BLUE[1] && img.data[p + 2] === BLUE[2]) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
      }
    }
    if (x0 > x1) continue;
    const last = bands[bands.length - 1];
    if (last && y - last.y1 <= 1) {
      last.y1 = y;
      last.x0 = Math.min(last.x0, x0);
      last.x1 = Math.max(last.x1, x1);
    } else bands.push({ y1: y, x0, x1 });
  }
  return bands.map((b) => b.x1 - b.x0);
}

const est = (mean: number, lo: number, hi: number): Estimate => ({ n: 10, mean, lo, hi });

test('a chart draws one whisker per class, as wide as its interval on the axis, and none for a class without a value', () => {
  const img = ciChart({
    title: 't',
    xLabel: 'x',
    xRange: [0, 1],
    width: 900,
    rows: [
      { label: 'a', estimate: est(0.5, 0.4, 0.6) },
      { label: 'b', estimate: { n: 0, mean: null, lo: null, hi: null } },
      { label: 'c', estimate: est(0.5, 0.1, 0.6) },
    ],
  });
  const w = whiskerWidths(img);
  assert.equal(w.length, 2, `whisker bands: ${w.join(', ')}`);
  // Same axis: the widths are in the ratio of the intervals (0.2 : 0.5), up to the 2-pixel line ends.
  assert.ok(Math.abs(w[1] / w[0] - 2.5) < 0.2, `widths ${w.join(', ')}`);
});

test('the Markdown report references every figure, and every figure is a PNG', () => {
  const stats = Object.fromEntries(STAT_NAMES.map((s) => [s, est(0.5, 0.4, 0.6)])) as ClassStats['stats'];
  const classes: ClassStats[] = [
    { classIndex: 1, className: 'one', requests: 10, stats },
    { classIndex: 2, requests: 10, stats },
  ];
  const figures = classStatsFigures(classes);
  assert.deepEqual(
    figures.map((f) => f.file),
    CLASS_FIGURE_FILES,
  );
  const md = classStatsMarkdown(classes, 0.5, figures);
  for (const f of figures) {
    assert.ok(md.includes(`](${f.file})`), f.file);
    const img = decodeImage(f.bytes, f.file);
    assert.equal(whiskerWidths(img).length, 2, f.file);
  }
});
