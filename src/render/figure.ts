/**
 * Figures: panels side by side, a title above each and an optional legend below (a colour bar for
 * a heatmap, class swatches for a label map). Text uses the built-in bitmap font (./text.ts).
 */
import { createImage, type RgbaImage } from '../image.js';
import { colormapLut, type ColormapName, type Rgb } from './colormap.js';
import { classColor, type Palette } from './palette.js';
import { drawContour, drawMarker } from './overlay.js';
import { resizeImageNearest, resizeLabelsNearest } from './resize.js';
import { LINE_HEIGHT, drawText, fitText, measureText } from './text.js';

export interface LegendEntry {
  color: Rgb;
  label: string;
}

export type Legend =
  /** A horizontal colour bar from min (left) to max (right) with ticks at min, middle and max. */
  | { type: 'colorbar'; colormap: ColormapName; min?: number; max?: number }
  /** Colour swatches with labels, flowing left to right over as many rows as needed. */
  | { type: 'classes'; entries: LegendEntry[] };

export interface Panel {
  image: RgbaImage;
  title?: string;
  legend?: Legend;
  /**
   * Decorations drawn after any enlargement, so they keep a fine line on small images: a marker on
   * a pixel and the contour of a binary mask, both in the panel image's own coordinates.
   */
  marker?: [number, number];
  contour?: Uint8Array;
}

export interface FigureOptions {
  background?: 'white' | 'dark';
  /** Space around and between panels, in pixels (default: grows with the text size). */
  margin?: number;
  /**
   * Small panels are enlarged by a whole factor (nearest neighbour, so pixels stay crisp) until the
   * largest reaches about this many pixels on its longer side; 0 or 1 to keep them as they are. Default 256.
   */
  minPanelSize?: number;
  /** Title size as a whole multiple of the 5x7 font (default: from the panel width, 1..3). */
  textScale?: number;
  /** Most rows of a class legend; the rest is summarised as "+N more". Default 4. */
  maxLegendRows?: number;
}

const THEMES = {
  white: { bg: [255, 255, 255] as Rgb, fg: [25, 25, 25] as Rgb, rule: [150, 150, 150] as Rgb },
  dark: { bg: [24, 24, 28] as Rgb, fg: [235, 235, 235] as Rgb, rule: [110, 110, 110] as Rgb },
};
type Theme = (typeof THEMES)['white'];

/** Lays the panels out left to right (tops aligned) on one canvas. */
export function renderFigure(panels: Panel[], options: FigureOptions = {}): RgbaImage {
  if (panels.length === 0) throw new RangeError('renderFigure needs at least one panel');
  const theme = THEMES[options.background ?? 'white'];
  const longest = Math.max(...panels.map((p) => Math.max(p.image.width, p.image.height)));
  const k = Math.max(1, Math.floor((options.minPanelSize ?? 256) / longest));
  const images = panels.map((p) => decorate(p, k));

  const narrowest = Math.min(...images.map((im) => im.width));
  const s = Math.max(1, Math.round(options.textScale ?? Math.min(3, Math.max(1, Math.round(narrowest / 170)))));
  // Legends one step smaller than titles once titles are large.
  const ls = s >= 3 ? s - 1 : s;
  const margin = options.margin ?? 4 * s + 4;
  const titles = panels.map((p, i) => (p.title ? layoutTitle(p.title, images[i].width, s) : null));
  const titleH = Math.max(0, ...titles.map((t) => (t ? t.height + 2 * s : 0)));
  const maxRows = options.maxLegendRows ?? 4;

  const layouts = panels.map((p, i) => (p.legend ? layoutLegend(p.legend, images[i].width, ls, maxRows) : null));
  const legendH = Math.max(0, ...layouts.map((l) => (l ? l.height : 0)));
  const imagesH = Math.max(...images.map((im) => im.height));

  const width = margin + images.reduce((sum, im) => sum + im.width + margin, 0);
  const height = margin + titleH + imagesH + (legendH > 0 ? margin + legendH : 0) + margin;
  const fig = createImage(width, height);
  fillRect(fig, 0, 0, width, height, theme.bg);

  let x = margin;
  panels.forEach((p, i) => {
    const im = images[i];
    const title = titles[i];
    // Titles sit just above their image, so one- and two-line titles line up at the bottom.
    if (title) title.draw(fig, x, margin + titleH - 2 * s - title.height, theme);
    blit(fig, im, x, margin + titleH, theme.bg);
    const layout = layouts[i];
    if (layout) layout.draw(fig, x, margin + titleH + imagesH + margin, theme);
    x += im.width + margin;
  });
  return fig;
}

/** Legend entries for the classes present in a label map, by class index ("3 cat", or "class 3" without a name). */
export function classLegendEntries(labels: ArrayLike<number>, palette: Palette, classNames?: readonly string[]): LegendEntry[] {
  const present = new Set<number>();
  for (let i = 0; i < labels.length; i++) present.add(labels[i]);
  return [...present]
    .sort((a, b) => a - b)
    .map((c) => ({ color: classColor(palette, c), label: classNames?.[c] ? `${c} ${classNames[c]}` : `class ${c}` }));
}

/** The panel image, enlarged k times, with its marker and contour drawn at that size. */
function decorate(p: Panel, k: number): RgbaImage {
  const { width: w, height: h } = p.image;
  const needsCopy = p.marker !== undefined || p.contour !== undefined;
  const im = k > 1 ? resizeImageNearest(p.image, w * k, h * k) : needsCopy ? { width: w, height: h, data: p.image.data.slice() } : p.image;
  if (p.contour) drawContour(im, k > 1 ? resizeLabelsNearest(p.contour, w, h, w * k, h * k) : p.contour);
  // The centre of source pixel x is at x * k + (k - 1) / 2 in the enlarged image.
  if (p.marker) drawMarker(im, p.marker[0] * k + Math.floor((k - 1) / 2), p.marker[1] * k + Math.floor((k - 1) / 2));
  return im;
}

/**
 * A centred title: one line at scale s if it fits, else wrapped at spaces onto two lines, else
 * smaller, and as a last resort cut with "...".
 */
function layoutTitle(
  title: string,
  width: number,
  s: number,
): { height: number; draw(fig: RgbaImage, x: number, y: number, theme: Theme): void } {
  let scale = s;
  let lines = [title];
  for (; scale >= 1; scale--) {
    if (measureText(title, scale).width <= width) break;
    const two = wrapTwo(title, width, scale);
    if (two) {
      lines = two;
      break;
    }
  }
  scale = Math.max(1, scale);
  lines = lines.map((l) => fitText(l, width, scale));
  return {
    height: lines.length * LINE_HEIGHT * scale,
    draw(fig, x, y, theme) {
      lines.forEach((line, i) => {
        const w = measureText(line, scale).width;
        drawText(fig, x + Math.floor((width - w) / 2), y + i * LINE_HEIGHT * scale, line, { color: theme.fg, scale });
      });
    },
  };
}

/** Splits at the space that balances two lines best, if both then fit. */
function wrapTwo(text: string, width: number, scale: number): [string, string] | null {
  let best: [string, string] | null = null;
  let bestW = Infinity;
  for (let i = text.indexOf(' '); i >= 0; i = text.indexOf(' ', i + 1)) {
    const a = text.slice(0, i).trimEnd();
    const b = text.slice(i + 1).trimStart();
    const w = Math.max(measureText(a, scale).width, measureText(b, scale).width);
    if (a && b && w <= width && w < bestW) {
      best = [a, b];
      bestW = w;
    }
  }
  return best;
}

interface LegendLayout {
  height: number;
  draw(fig: RgbaImage, x: number, y: number, theme: Theme): void;
}

function layoutLegend(legend: Legend, width: number, s: number, maxRows: number): LegendLayout {
  return legend.type === 'colorbar' ? colorBarLayout(legend, width, s) : classesLayout(legend.entries, width, s, maxRows);
}

function colorBarLayout(legend: Extract<Legend, { type: 'colorbar' }>, width: number, s: number): LegendLayout {
  const barH = 5 * s + 2;
  const tick = 2 * s;
  const lo = legend.min ?? 0;
  const hi = legend.max ?? 1;
  return {
    height: barH + tick + s + LINE_HEIGHT * s,
    draw(fig, x, y, theme) {
      const lut = colormapLut(legend.colormap);
      for (let i = 0; i < width; i++) {
        const k = Math.round((i / Math.max(1, width - 1)) * 255) * 3;
        fillRect(fig, x + i, y, 1, barH, [lut[k], lut[k + 1], lut[k + 2]]);
      }
      strokeRect(fig, x, y, width, barH, theme.rule);
      const ticks = [lo, (lo + hi) / 2, hi];
      ticks.forEach((v, j) => {
        const tx = x + Math.round((j / 2) * (width - 1));
        fillRect(fig, tx - Math.floor(s / 2), y + barH, s, tick, theme.fg);
        const label = formatTick(v);
        const w = measureText(label, s).width;
        // End labels stay inside the bar's span; the middle one is centred on its tick.
        const lx = j === 0 ? x : j === 2 ? x + width - w : tx - Math.floor(w / 2);
        drawText(fig, lx, y + barH + tick + s, label, { color: theme.fg, scale: s });
      });
    },
  };
}

function classesLayout(entries: LegendEntry[], width: number, s: number, maxRows: number): LegendLayout {
  const sw = 7 * s; // swatch side = cap height
  const gap = 2 * s;
  const rowH = LINE_HEIGHT * s + 2 * s;
  const entryW = (e: LegendEntry) => sw + gap + measureText(e.label, s).width;
  // Place entries greedily in rows; past maxRows, the last slot says how many were left out.
  const placed: Array<{ e: LegendEntry; x: number; row: number }> = [];
  let cx = 0;
  let row = 0;
  let more = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = { ...entries[i], label: fitText(entries[i].label, width - sw - gap, s) };
    const w = entryW(e);
    if (cx > 0 && cx + w > width) {
      row++;
      cx = 0;
    }
    if (row >= maxRows) {
      more = entries.length - i;
      break;
    }
    placed.push({ e, x: cx, row });
    cx += w + 4 * gap;
  }
  if (more > 0) {
    // Make room for "+N more" at the end of the last row, dropping entries if needed.
    const tag = () => `+${more} more`;
    while (placed.length > 0) {
      const last = placed[placed.length - 1];
      const end = last.x + entryW(last.e) + 4 * gap;
      if (last.row < maxRows - 1 || end + measureText(tag(), s).width <= width) break;
      placed.pop();
      more++;
    }
  }
  const rows = placed.length ? placed[placed.length - 1].row + 1 : 1;
  return {
    height: rows * rowH - 2 * s,
    draw(fig, x, y, theme) {
      for (const p of placed) {
        const py = y + p.row * rowH;
        fillRect(fig, x + p.x, py, sw, sw, p.e.color);
        strokeRect(fig, x + p.x, py, sw, sw, theme.rule);
        drawText(fig, x + p.x + sw + gap, py, p.e.label, { color: theme.fg, scale: s });
      }
      if (more > 0) {
        const last = placed[placed.length - 1];
        const tx = last ? last.x + entryW(last.e) + 4 * gap : 0;
        const ty = last ? last.row : 0;
        drawText(fig, x + tx, y + ty * rowH, `+${more} more`, { color: theme.fg, scale: s });
      }
    },
  };
}

function formatTick(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
}

function fillRect(img: RgbaImage, x0: number, y0: number, w: number, h: number, [r, g, b]: Rgb): void {
  const xa = Math.max(0, x0);
  const xb = Math.min(img.width, x0 + w);
  for (let y = Math.max(0, y0); y < Math.min(img.height, y0 + h); y++) {
    for (let x = xa; x < xb; x++) {
      const p = (y * img.width + x) * 4;
      img.data[p] = r;
      img.data[p + 1] = g;
      img.data[p + 2] = b;
      img.data[p + 3] = 255;
    }
  }
}

function strokeRect(img: RgbaImage, x: number, y: number, w: number, h: number, c: Rgb): void {
  fillRect(img, x, y, w, 1, c);
  fillRect(img, x, y + h - 1, w, 1, c);
  fillRect(img, x, y, 1, h, c);
  fillRect(img, x + w - 1, y, 1, h, c);
}

/** Copies src onto dst at (x0, y0), compositing any transparency over the background colour. */
function blit(dst: RgbaImage, src: RgbaImage, x0: number, y0: number, bg: Rgb): void {
  for (let y = 0; y < src.height; y++) {
    for (let x = 0; x < src.width; x++) {
      const s = (y * src.width + x) * 4;
      const d = ((y0 + y) * dst.width + x0 + x) * 4;
      const a = src.data[s + 3] / 255;
      dst.data[d] = a * src.data[s] + (1 - a) * bg[0];
      dst.data[d + 1] = a * src.data[s + 1] + (1 - a) * bg[1];
      dst.data[d + 2] = a * src.data[s + 2] + (1 - a) * bg[2];
      dst.data[d + 3] = 255;
    }
  }
}
