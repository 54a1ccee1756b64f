/**
 * A panel's drawing surface: a base canvas at the image's own resolution (scaled by CSS, pixelated
 * for small images) and a marks canvas on top at screen resolution for the region, contours and
 * markers, so that marks stay crisp on a 64x64 tile.
 */
import type { RgbaImage } from '../../../src/image.js';

/** The fallback display size when the panel has no layout yet. */
export const STAGE_SIZE = 340;

/** Draws an image on a canvas at the image's own resolution (sizing the canvas to it). */
export function putImage(canvas: HTMLCanvasElement, img: RgbaImage): void {
  if (canvas.width !== img.width || canvas.height !== img.height) {
    canvas.width = img.width;
    canvas.height = img.height;
  }
  (canvas.getContext('2d') as CanvasRenderingContext2D).putImageData(
    new ImageData(new Uint8ClampedArray(img.data), img.width, img.height),
    0,
    0,
  );
}

export class Stage {
  readonly base: HTMLCanvasElement;
  readonly marks: HTMLCanvasElement;
  private imgW = 1;
  private imgH = 1;
  private dispW = STAGE_SIZE;
  private dispH = STAGE_SIZE;
  /** The last image shown, to lay it out again when the window is resized. */
  shown: RgbaImage | null = null;

  constructor(readonly root: HTMLElement) {
    this.base = root.querySelector('canvas.base') as HTMLCanvasElement;
    this.marks = root.querySelector('canvas.marks') as HTMLCanvasElement;
  }

  /** Shows an image (sizes the canvases to it). */
  show(img: RgbaImage): void {
    this.shown = img;
    this.imgW = img.width;
    this.imgH = img.height;
    const box = this.root.clientWidth || STAGE_SIZE;
    const scale = Math.min(box / img.width, box / img.height);
    this.dispW = Math.round(img.width * scale);
    this.dispH = Math.round(img.height * scale);
    this.base.style.width = `${this.dispW}px`;
    this.base.style.height = `${this.dispH}px`;
    this.base.classList.toggle('pixelated', scale >= 2);
    const dpr = window.devicePixelRatio || 1;
    this.marks.width = Math.round(this.dispW * dpr);
    this.marks.height = Math.round(this.dispH * dpr);
    this.marks.style.width = `${this.dispW}px`;
    this.marks.style.height = `${this.dispH}px`;
    putImage(this.base, img);
  }

  clear(): void {
    this.shown = null;
    const ctx = this.base.getContext('2d') as CanvasRenderingContext2D;
    ctx.clearRect(0, 0, this.base.width, this.base.height);
    this.clearMarks();
  }

  /** Image pixel under a mouse event, clamped to the image. */
  pixelAt(event: MouseEvent): [number, number] {
    const r = this.base.getBoundingClientRect();
    const x = Math.floor(((event.clientX - r.left) / r.width) * this.imgW);
    const y = Math.floor(((event.clientY - r.top) / r.height) * this.imgH);
    return [Math.min(this.imgW - 1, Math.max(0, x)), Math.min(this.imgH - 1, Math.max(0, y))];
  }

  /** True when the event is over the image itself. */
  inside(event: MouseEvent): boolean {
    const r = this.base.getBoundingClientRect();
    return event.clientX >= r.left && event.clientX < r.right && event.clientY >= r.top && event.clientY < r.bottom;
  }

  clearMarks(): CanvasRenderingContext2D {
    const ctx = this.marks.getContext('2d') as CanvasRenderingContext2D;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.marks.width, this.marks.height);
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  /** Display coordinates of an image coordinate (pixel corners; add 0.5 for centres). */
  sx = (x: number) => (x * this.dispW) / this.imgW;
  sy = (y: number) => (y * this.dispH) / this.imgH;

  /** The outline of a mask over a grid (the output grid, or the image), drawn on the marks. */
  contour(ctx: CanvasRenderingContext2D, mask: Uint8Array, gw: number, gh: number, color = '#ffffff', width = 1.5): void {
    const cx = this.dispW / gw;
    const cy = this.dispH / gh;
    const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < gw && y < gh ? mask[y * gw + x] : 0);
    ctx.beginPath();
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        if (!mask[y * gw + x]) continue;
        const edge = (x0: number, y0: number, x1: number, y1: number) => {
          ctx.moveTo(x0 * cx, y0 * cy);
          ctx.lineTo(x1 * cx, y1 * cy);
        };
        if (!at(x, y - 1)) edge(x, y, x + 1, y);
        if (!at(x, y + 1)) edge(x, y + 1, x + 1, y + 1);
        if (!at(x - 1, y)) edge(x, y, x, y + 1);
        if (!at(x + 1, y)) edge(x + 1, y, x + 1, y + 1);
      }
    }
    ctx.lineWidth = width + 2;
    ctx.strokeStyle = 'rgba(0,0,0,0.6)';
    ctx.stroke();
    ctx.lineWidth = width;
    ctx.strokeStyle = color;
    ctx.stroke();
  }

  /** A translucent fill of a mask over a grid. */
  fill(ctx: CanvasRenderingContext2D, mask: Uint8Array, gw: number, gh: number, color: string): void {
    const cx = this.dispW / gw;
    const cy = this.dispH / gh;
    ctx.fillStyle = color;
    for (let y = 0; y < gh; y++) {
      let x = 0;
      while (x < gw) {
        if (!mask[y * gw + x]) {
          x++;
          continue;
        }
        const start = x;
        while (x < gw && mask[y * gw + x]) x++;
        ctx.fillRect(start * cx, y * cy, (x - start) * cx, cy + 0.5);
      }
    }
  }

  /** A ring marker at an image pixel. */
  marker(ctx: CanvasRenderingContext2D, x: number, y: number, color = '#ffffff'): void {
    const px = this.sx(x + 0.5);
    const py = this.sy(y + 0.5);
    ctx.lineWidth = 3.5;
    ctx.strokeStyle = 'rgba(0,0,0,0.7)';
    ctx.beginPath();
    ctx.arc(px, py, 6, 0, Math.PI * 2);
    ctx.stroke();
    ctx.lineWidth = 1.8;
    ctx.strokeStyle = color;
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.fillRect(px - 1, py - 1, 2, 2);
  }

  box(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number, color = '#ffffff'): void {
    const l = this.sx(Math.min(x0, x1));
    const t = this.sy(Math.min(y0, y1));
    const w = this.sx(Math.max(x0, x1) + 1) - l;
    const h = this.sy(Math.max(y0, y1) + 1) - t;
    ctx.lineWidth = 3.5;
    ctx.strokeStyle = 'rgba(0,0,0,0.6)';
    ctx.strokeRect(l, t, w, h);
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 3]);
    ctx.strokeStyle = color;
    ctx.strokeRect(l, t, w, h);
    ctx.setLineDash([]);
  }
}
