/**
 * Plain raster charts for the evaluation report, drawn on the canvas of src/eval/canvas.ts with the
 * project's own font and colour maps: line charts, horizontal grouped bars, a matrix heatmap and a
 * scatter plot. No plotting dependency, identical output everywhere.
 */
import type { RgbaImage } from '../image.js';
import { colormap, type ColormapName, type Rgb } from '../render/colormap.js';
import { LINE_HEIGHT, measureText } from '../render/text.js';
import { AXIS, Canvas, GRID, INK, ticks } from './canvas.js';

export interface Series {
  label: string;
  color: Rgb;
  xs: number[];
  ys: number[];
  dash?: boolean;
  thickness?: number;
  /** Draw a marker at each point. */
  markers?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xRange?: [number, number];
  yRange?: [number, number];
  /** Tick labels at given x values (e.g. the names of cascade steps); default: numeric ticks. */
  xTicks?: Array<{ value: number; label: string }>;
  width?: number;
  height?: number;
  /** Legend to the right of the plot (default) or none. */
  legend?: boolean;
}

/** A line chart with a legend on the right. */
export function lineChart(o: LineChartOptions): RgbaImage {
  const s = 2;
  const legendW = o.legend === false ? 0 : Math.max(...o.series.map((se) => measureText(se.label, s).width)) + 60;
  const width = o.width ?? 640 + legendW;
  const height = o.height ?? 420;
  const tickW = measureText('-0.00', s).width + 12;
  const left = 24 + LINE_HEIGHT * s + tickW;
  const top = 16 + LINE_HEIGHT * s + 14;
  const rotatedTicks =
    o.xTicks && o.xTicks.some((t) => measureText(t.label, s).width > (width - legendW - left - 20) / Math.max(1, o.xTicks!.length));
  const xTickH = rotatedTicks ? Math.max(...o.xTicks!.map((t) => measureText(t.label, s).width)) + 10 : LINE_HEIGHT * s + 10;
  const bottom = height - (16 + LINE_HEIGHT * s + 10 + xTickH);
  const right = width - legendW - 20;
  const allX = o.series.flatMap((se) => se.xs);
  const allY = o.series.flatMap((se) => se.ys).filter(Number.isFinite);
  const [x0, x1] = o.xRange ?? [Math.min(...allX), Math.max(...allX)];
  const [y0, y1] = o.yRange ?? [Math.min(0, ...allY), Math.max(...allY, 1e-9)];
  const X = (v: number) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left);
  const Y = (v: number) => bottom - ((v - y0) / (y1 - y0 || 1)) * (bottom - top);
  const c = new Canvas(width, height);
  c.text(left + (right - left) / 2, 12, o.title, { align: 'center', scale: s });
  for (const t of ticks(y0, y1, 5)) {
    c.line(left, Y(t.value), right, Y(t.value), GRID);
    c.text(left - 8, Y(t.value), t.label, { align: 'right', middle: true, scale: s });
  }
  const xt = o.xTicks ?? ticks(x0, x1, 5);
  for (const t of xt) {
    c.line(X(t.value), top, X(t.value), bottom, GRID);
    if (rotatedTicks) c.textVertical(X(t.value), bottom + 8 + measureText(t.label, s).width / 2, t.label, { scale: s });
    else c.text(X(t.value), bottom + 8, t.label, { align: 'center', scale: s });
  }
  if (y0 < 0 && y1 > 0) c.line(left, Y(0), right, Y(0), AXIS);
  c.line(left, top, left, bottom, AXIS);
  c.line(left, bottom, right, bottom, AXIS);
  c.text(left + (right - left) / 2, height - 8 - LINE_HEIGHT * s, o.xLabel, { align: 'center', scale: s });
  c.textVertical(14 + (LINE_HEIGHT * s) / 2, (top + bottom) / 2, o.yLabel, { scale: s });
  for (const se of o.series) {
    for (let i = 1; i < se.xs.length; i++) {
      if (!Number.isFinite(se.ys[i - 1]) || !Number.isFinite(se.ys[i])) continue;
      c.line(X(se.xs[i - 1]), Y(se.ys[i - 1]), X(se.xs[i]), Y(se.ys[i]), se.color, se.thickness ?? 2, se.dash ? [6, 5] : undefined);
    }
    if (se.markers) se.xs.forEach((x, i) => Number.isFinite(se.ys[i]) && c.marker(X(x), Y(se.ys[i]), 3, se.color));
  }
  if (legendW > 0) {
    let ly = top;
    for (const se of o.series) {
      c.line(right + 20, ly + 7, right + 50, ly + 7, se.color, se.thickness ?? 2, se.dash ? [6, 5] : undefined);
      c.text(right + 56, ly, se.label, { scale: s });
      ly += LINE_HEIGHT * s + 8;
    }
  }
  return c.img;
}

export interface BarChartOptions {
  title: string;
  /** One row per item (e.g. a method); one bar per series in each row. NaN = no bar ("n/a"). */
  rows: Array<{ label: string; values: number[] }>;
  series: Array<{ label: string; color: Rgb }>;
  xLabel: string;
  xRange?: [number, number];
  /** Vertical reference lines (e.g. the chance level). */
  refLines?: Array<{ value: number; label: string; color: Rgb }>;
  width?: number;
  digits?: number;
}

/**
 * Horizontal grouped bars with the value printed at each bar's end. A NaN value draws no bar and
 * takes no room (a row may have fewer bars than there are series; colours name the series).
 */
export function barChart(o: BarChartOptions): RgbaImage {
  const s = 2;
  const barH = 14;
  const gap = 12;
  const labelW = Math.max(...o.rows.map((r) => measureText(r.label, s).width)) + 16;
  const width = Math.max(
    o.width ?? 900,
    labelW + 16 + 420,
    measureText(o.title, s).width + 40,
    measureText(o.xLabel, s).width + labelW + 60,
  );
  const left = 16 + labelW;
  const right = width - 90;
  // Legend under the title, wrapped to the plot's width.
  const legendRows: Array<Array<{ label: string; color: Rgb; x: number }>> = [[]];
  let lx = left;
  for (const se of o.series) {
    const w = 20 + measureText(se.label, s).width + 24;
    if (lx + w > width - 10 && legendRows[legendRows.length - 1].length > 0) {
      legendRows.push([]);
      lx = left;
    }
    legendRows[legendRows.length - 1].push({ ...se, x: lx });
    lx += w;
  }
  const legendTop = 16 + LINE_HEIGHT * s + 8;
  const top = legendTop + legendRows.length * (LINE_HEIGHT * s + 6) + 10;
  const rowHeights = o.rows.map((r) => Math.max(1, r.values.filter(Number.isFinite).length) * barH + gap);
  const rowTops: number[] = [];
  let y = top;
  for (const h of rowHeights) {
    rowTops.push(y);
    y += h;
  }
  const bottom = y;
  const height = bottom + 16 + LINE_HEIGHT * s + 10 + LINE_HEIGHT * s + 14;
  const all = o.rows.flatMap((r) => r.values).filter(Number.isFinite);
  const [x0, x1] = o.xRange ?? [Math.min(0, ...all), Math.max(...all, 1e-9)];
  const X = (v: number) => left + ((Math.min(x1, Math.max(x0, v)) - x0) / (x1 - x0 || 1)) * (right - left);
  const c = new Canvas(width, height);
  c.text(width / 2, 12, o.title, { align: 'center', scale: s });
  legendRows.forEach((row, i) => {
    for (const e of row) {
      c.rect(e.x, legendTop + i * (LINE_HEIGHT * s + 6) + 1, 14, 12, e.color);
      c.text(e.x + 20, legendTop + i * (LINE_HEIGHT * s + 6), e.label, { scale: s });
    }
  });
  for (const t of ticks(x0, x1, 5)) {
    c.line(X(t.value), top - 4, X(t.value), bottom, GRID);
    c.text(X(t.value), bottom + 6, t.label, { align: 'center', scale: s });
  }
  c.line(X(Math.max(x0, Math.min(x1, 0))), top - 4, X(Math.max(x0, Math.min(x1, 0))), bottom, AXIS);
  o.rows.forEach((r, i) => {
    const ry = rowTops[i];
    const shown = r.values.map((v, k) => ({ v, k })).filter((e) => Number.isFinite(e.v));
    c.text(left - 10, ry + (Math.max(1, shown.length) * barH) / 2, r.label, { align: 'right', middle: true, scale: s });
    if (shown.length === 0) c.text(X(0) + 4, ry + barH / 2, 'n/a', { middle: true, scale: 1, color: AXIS });
    shown.forEach(({ v, k }, j) => {
      const by = ry + j * barH;
      const a = X(Math.min(0, v));
      const b = X(Math.max(0, v));
      c.rect(a, by + 1, Math.max(1, b - a), barH - 2, o.series[k].color);
      c.text(b + 4, by + barH / 2, v.toFixed(o.digits ?? 2), { middle: true, scale: 1 });
    });
  });
  for (const ref of o.refLines ?? []) {
    c.line(X(ref.value), top - 4, X(ref.value), bottom, ref.color, 2, [6, 4]);
    c.text(X(ref.value), bottom + 8 + LINE_HEIGHT * s, ref.label, { align: 'center', scale: 1, color: ref.color });
  }
  c.text(left + (right - left) / 2, height - 8 - LINE_HEIGHT * s, o.xLabel, { align: 'center', scale: s });
  return c.img;
}

export interface MatrixOptions {
  title: string;
  colormap: ColormapName;
  range: [number, number];
  /** Rows/columns after which a separator line is drawn (e.g. between digit instances). */
  boundaries?: number[];
  /** Pixels per cell (default: fills about 480 pixels). */
  cell?: number;
  caption?: string;
}

/** An n × n matrix as coloured cells with a colour bar. NaN cells are grey. */
export function matrixPlot(matrix: ArrayLike<number>, n: number, o: MatrixOptions): RgbaImage {
  const s = 2;
  const cell = o.cell ?? Math.max(2, Math.floor(480 / Math.max(1, n)));
  const side = cell * n;
  const left = 20;
  const top = 16 + LINE_HEIGHT * s + 12;
  const barX = left + side + 24;
  const width = barX + 24 + measureText('-1.00', s).width + 24;
  const captionH = o.caption ? LINE_HEIGHT * s + 14 : 0;
  const height = top + side + 20 + captionH;
  const c = new Canvas(Math.max(width, measureText(o.title, s).width + 40, o.caption ? measureText(o.caption, s).width + 40 : 0), height);
  c.text(c.width / 2, 12, o.title, { align: 'center', scale: s });
  const [lo, hi] = o.range;
  const t = (v: number) => (v - lo) / (hi - lo || 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = matrix[i * n + j];
      c.rect(left + j * cell, top + i * cell, cell, cell, Number.isFinite(v) ? colormap(o.colormap, t(v)) : [160, 160, 160]);
    }
  }
  for (const b of o.boundaries ?? []) {
    if (b <= 0 || b >= n) continue;
    c.line(left + b * cell, top, left + b * cell, top + side - 1, [255, 255, 255], 2);
    c.line(left, top + b * cell, left + side - 1, top + b * cell, [255, 255, 255], 2);
  }
  for (let y = 0; y < side; y++) c.rect(barX, top + y, 18, 1, colormap(o.colormap, 1 - y / Math.max(1, side - 1)));
  for (const tk of ticks(lo, hi, 4)) {
    const y = top + (1 - t(tk.value)) * (side - 1);
    c.line(barX + 18, y, barX + 22, y, INK);
    c.text(barX + 26, y, tk.label, { middle: true, scale: s });
  }
  if (o.caption) c.text(c.width / 2, top + side + 14, o.caption, { align: 'center', scale: s });
  return c.img;
}

export interface ScatterOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  points: Array<{ x: number; y: number; color: Rgb }>;
  /** Categorical legend entries, or a colour bar for a continuous colouring. */
  legend?: { entries: Array<{ label: string; color: Rgb }> } | { colormap: ColormapName; min: number; max: number; label: string };
  size?: number;
}

/** A square scatter plot with a legend or colour bar on the right. */
export function scatterPlot(o: ScatterOptions): RgbaImage {
  const s = 2;
  const side = o.size ?? 400;
  const tickW = measureText('-0.00', s).width + 12;
  const left = 24 + LINE_HEIGHT * s + tickW;
  const top = 16 + LINE_HEIGHT * s + 14;
  const legendW =
    o.legend && 'entries' in o.legend
      ? Math.max(...o.legend.entries.map((e) => measureText(e.label, s).width)) + 50
      : o.legend
        ? 24 + 24 + measureText('-0.00', s).width + 24
        : 0;
  const width = left + side + 24 + legendW;
  const height = top + side + 16 + LINE_HEIGHT * s + 10 + LINE_HEIGHT * s + 14;
  const c = new Canvas(width, height);
  c.text(left + side / 2, 12, o.title, { align: 'center', scale: s });
  const xs = o.points.map((p) => p.x);
  const ys = o.points.map((p) => p.y);
  const pad = (lo: number, hi: number): [number, number] => {
    const d = hi - lo || 1;
    return [lo - 0.06 * d, hi + 0.06 * d];
  };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * side;
  const Y = (v: number) => top + side - ((v - y0) / (y1 - y0)) * side;
  for (const t of ticks(x0, x1, 4)) {
    c.line(X(t.value), top, X(t.value), top + side, GRID);
    c.text(X(t.value), top + side + 6, t.label, { align: 'center', scale: s });
  }
  for (const t of ticks(y0, y1, 4)) {
    c.line(left, Y(t.value), left + side, Y(t.value), GRID);
    c.text(left - 8, Y(t.value), t.label, { align: 'right', middle: true, scale: s });
  }
  c.line(left, top, left, top + side, AXIS);
  c.line(left, top + side, left + side, top + side, AXIS);
  for (const p of o.points) c.marker(X(p.x), Y(p.y), 4, p.color, 'circle', [40, 40, 40]);
  c.text(left + side / 2, height - 8 - LINE_HEIGHT * s, o.xLabel, { align: 'center', scale: s });
  c.textVertical(14 + (LINE_HEIGHT * s) / 2, top + side / 2, o.yLabel, { scale: s });
  const lx = left + side + 24;
  if (o.legend && 'entries' in o.legend) {
    let ly = top;
    for (const e of o.legend.entries) {
      c.marker(lx + 8, ly + 7, 5, e.color, 'circle', [40, 40, 40]);
      c.text(lx + 22, ly, e.label, { scale: s });
      ly += LINE_HEIGHT * s + 8;
    }
  } else if (o.legend) {
    const { colormap: cm, min, max, label } = o.legend;
    const h = side - 30;
    for (let y = 0; y < h; y++) c.rect(lx, top + 30 + y, 18, 1, colormap(cm, 1 - y / Math.max(1, h - 1)));
    c.text(lx, top, label, { scale: s });
    for (const t of ticks(min, max, 4)) {
      const y = top + 30 + (1 - (t.value - min) / (max - min || 1)) * (h - 1);
      c.line(lx + 18, y, lx + 22, y, INK);
      c.text(lx + 26, y, t.label, { middle: true, scale: s });
    }
  }
  return c.img;
}
