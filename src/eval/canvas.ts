/**
 * A raster canvas for the evaluation's charts (src/eval/plot.ts): pixels, rectangles, lines,
 * markers and text in the project's 5x7 bitmap font (src/render/text.ts), round tick values,
 * categorical colours, and images stacked side by side or top to bottom.
 */
import { createImage, type RgbaImage } from '../image.js';
import type { Rgb } from '../render/colormap.js';
import { drawText, measureText } from '../render/text.js';

/** Tableau 10 and two more: distinguishable categorical colours. */
export const CATEGORICAL: Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
  [0, 0, 128],
  [128, 128, 0],
];
export const categorical = (i: number): Rgb => CATEGORICAL[((i % CATEGORICAL.length) + CATEGORICAL.length) % CATEGORICAL.length];

export const INK: Rgb = [30, 30, 30];
export const GRID: Rgb = [225, 225, 225];
export const AXIS: Rgb = [120, 120, 120];

type Align = 'left' | 'center' | 'right';

export class Canvas {
  readonly img: RgbaImage;
  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.img = createImage(width, height);
    this.rect(0, 0, width, height, background);
  }

  pixel(x: number, y: number, c: Rgb): void {
    const px = Math.round(x);
    const py = Math.round(y);
    if (px < 0 || py < 0 || px >= this.width || py >= this.height) return;
    const p = (py * this.width + px) * 4;
    this.img.data[p] = c[0];
    this.img.data[p + 1] = c[1];
    this.img.data[p + 2] = c[2];
    this.img.data[p + 3] = 255;
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) this.pixel(px, py, c);
  }

  /** A straight line `thickness` pixels wide; `dash` = [on, off] lengths in pixels. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1, dash?: [number, number]): void {
    const len = Math.hypot(x1 - x0, y1 - y0);
    const n = Math.max(1, Math.ceil(len * 2));
    const r = (thickness - 1) / 2;
    for (let i = 0; i <= n; i++) {
      const t = i / n;
      if (dash && (t * len) % (dash[0] + dash[1]) >= dash[0]) continue;
      const x = x0 + t * (x1 - x0);
      const y = y0 + t * (y1 - y0);
      for (let dy = -Math.floor(r); dy <= Math.ceil(r); dy++)
        for (let dx = -Math.floor(r); dx <= Math.ceil(r); dx++) this.pixel(x + dx, y + dy, c);
    }
  }

  /** A filled disc (or square) marker of radius r. */
  marker(x: number, y: number, r: number, c: Rgb, shape: 'circle' | 'square' = 'circle', outline?: Rgb): void {
    for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++) {
      for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) {
        const d = shape === 'circle' ? Math.hypot(dx, dy) : Math.max(Math.abs(dx), Math.abs(dy));
        if (d <= r) this.pixel(x + dx, y + dy, outline && d > r - 1 ? outline : c);
      }
    }
  }

  /** One line of text; (x, y) is the anchor: left/centre/right edge and the top (or middle with `middle`). */
  text(x: number, y: number, s: string, o: { color?: Rgb; scale?: number; align?: Align; middle?: boolean } = {}): number {
    const scale = o.scale ?? 2;
    const { width, height } = measureText(s, scale);
    const left = o.align === 'center' ? x - width / 2 : o.align === 'right' ? x - width : x;
    const top = o.middle ? y - (7 * scale) / 2 : y;
    void height;
    drawText(this.img, Math.round(left), Math.round(top), s, { color: o.color ?? INK, scale });
    return width;
  }

  /** Text turned 90° counter-clockwise, centred on (x, y) (a y-axis label). */
  textVertical(x: number, y: number, s: string, o: { color?: Rgb; scale?: number } = {}): void {
    const scale = o.scale ?? 2;
    const { width, height } = measureText(s, scale);
    if (width === 0) return;
    const tmp = createImage(width, height);
    drawText(tmp, 0, 0, s, { color: o.color ?? INK, scale });
    const left = Math.round(x - height / 2);
    const top = Math.round(y - width / 2);
    for (let ty = 0; ty < height; ty++) {
      for (let tx = 0; tx < width; tx++) {
        const p = (ty * width + tx) * 4;
        if (tmp.data[p + 3] === 0) continue;
        // (tx, ty) → (ty, width − 1 − tx): a quarter turn counter-clockwise.
        this.pixel(left + ty, top + (width - 1 - tx), [tmp.data[p], tmp.data[p + 1], tmp.data[p + 2]]);
      }
    }
  }

  /** Copies an image in at (x, y). */
  blit(src: RgbaImage, x: number, y: number): void {
    for (let sy = 0; sy < src.height; sy++) {
      for (let sx = 0; sx < src.width; sx++) {
        const p = (sy * src.width + sx) * 4;
        this.pixel(x + sx, y + sy, [src.data[p], src.data[p + 1], src.data[p + 2]]);
      }
    }
  }
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A tick value with as many decimals as the tick step needs ('.5' style without the leading zero). */
export function tickLabel(v: number, step = 0): string {
  const digits =
    step > 0
      ? Math.max(
          0,
          Math.min(6, Math.ceil(-Math.log10(step) - 1e-9) + (Math.abs(step / 10 ** Math.floor(Math.log10(step)) - 2.5) < 1e-9 ? 1 : 0)),
        )
      : Number.isInteger(v)
        ? 0
        : 2;
  const s = Math.abs(v) < 1e-12 ? '0' : v.toFixed(digits);
  return s.replace(/^(-?)0\./, '$1.');
}

/** Ticks with their labels. */
export function ticks(lo: number, hi: number, count: number): Array<{ value: number; label: string }> {
  const t = niceTicks(lo, hi, count);
  const step = t.length > 1 ? t[1] - t[0] : 0;
  return t.map((value) => ({ value, label: tickLabel(value, step) }));
}

/** Images side by side (tops aligned) on a white canvas. */
export function hstack(images: RgbaImage[], gap = 16): RgbaImage {
  const width = images.reduce((w, im) => w + im.width, 0) + gap * Math.max(0, images.length - 1);
  const height = Math.max(...images.map((im) => im.height));
  const c = new Canvas(width, height);
  let x = 0;
  for (const im of images) {
    c.blit(im, x, 0);
    x += im.width + gap;
  }
  return c.img;
}

/** Images stacked top to bottom (left aligned). */
export function vstack(images: RgbaImage[], gap = 16): RgbaImage {
  const width = Math.max(...images.map((im) => im.width));
  const height = images.reduce((h, im) => h + im.height, 0) + gap * Math.max(0, images.length - 1);
  const c = new Canvas(width, height);
  let y = 0;
  for (const im of images) {
    c.blit(im, 0, y);
    y += im.height + gap;
  }
  return c.img;
}
