/**
 * The paper's comparisons: the same region's heatmap at every layer (a grid), and the α weights
 * of two regions side by side with their cosine similarity.
 */
import type { RgbaImage } from '../../../src/image.js';
import { overlayHeatmap, resizeImageBilinear, resizeMapBilinear, type ColormapName } from '../../../src/render/index.js';
import type { ExplanationMsg, LayerRow } from '../protocol.js';
import { putImage } from './stage.js';

const CELL = 128;

/**
 * The layers worth a cell when the list is long: one per run of layers at the same spatial
 * resolution (the last of the run, where that stage's computation is complete), and the
 * bottleneck. 1x1 layers (squeeze-and-excitation vectors, pooled features) are left out: their
 * heatmap is a constant.
 */
export function resolutionChanges(layers: LayerRow[]): LayerRow[] {
  const spatial = layers.filter((l) => l.bottleneck || l.outputShape[1] * l.outputShape[2] > 1);
  const res = (l: LayerRow) => `${l.outputShape[1]}x${l.outputShape[2]}`;
  return spatial.filter((l, i) => {
    const next = spatial[i + 1];
    return l.bottleneck || !next || res(next) !== res(l);
  });
}

/** A small copy of the image for the cells (the same for every cell). */
export function thumbnailBase(image: RgbaImage): RgbaImage {
  const scale = Math.min(1, CELL / Math.max(image.width, image.height));
  if (scale === 1) return image;
  return resizeImageBilinear(image, Math.max(1, Math.round(image.width * scale)), Math.max(1, Math.round(image.height * scale)));
}

export function drawCell(canvas: HTMLCanvasElement, thumb: RgbaImage, e: ExplanationMsg, colormap: ColormapName, opacity: number): void {
  const heat =
    thumb.width === e.width && thumb.height === e.height
      ? e.heatmap
      : resizeMapBilinear(e.heatmap, e.width, e.height, thumb.width, thumb.height);
  const img = overlayHeatmap(thumb, heat, { colormap, opacity: Math.max(opacity, 0.6) });
  putImage(canvas, img);
  canvas.classList.toggle('pixelated', img.width < CELL);
}

export function makeCell(layer: LayerRow): { element: HTMLElement; canvas: HTMLCanvasElement } {
  const element = document.createElement('div');
  element.className = `cell${layer.bottleneck ? ' bottleneck' : ''}`;
  element.dataset.layer = layer.name;
  const canvas = document.createElement('canvas');
  canvas.width = 1;
  canvas.height = 1;
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = layer.name;
  name.title = `${layer.name} (${layer.type})`;
  const shape = document.createElement('div');
  shape.className = 'shape';
  shape.textContent = `${layer.outputShape.slice(1).join('×')} · ${layer.type}`;
  element.append(canvas, name, shape);
  return { element, canvas };
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

export interface Pinned {
  weights: Float32Array;
  label: string;
  layer: string;
}

/**
 * α_A (top strip) and α_B (bottom strip), one bar per channel, signed. Each strip has its own
 * scale (printed): a region of thousands of pixels has far larger α than one pixel, and the
 * cosine similarity does not depend on the scale.
 */
export function drawAlphaChart(canvas: HTMLCanvasElement, a: Pinned, b: Pinned): void {
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  const W = canvas.width;
  const H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const n = a.weights.length;
  const left = 56;
  const right = 10;
  const step = (W - left - right) / n;
  const bar = Math.max(1, step * 0.8);
  ctx.font = '12px system-ui, sans-serif';
  const strip = (w: Float32Array, top: number, height: number, color: string, label: string) => {
    let max = 0;
    for (const v of w) max = Math.max(max, Math.abs(v));
    max = max || 1;
    const mid = top + 16 + (height - 16) / 2;
    const half = (height - 16) / 2 - 2;
    ctx.fillStyle = '#c9ccd4';
    ctx.fillText(label, left, top + 12);
    ctx.fillStyle = '#9aa0ad';
    ctx.fillText(`+${max.toPrecision(2)}`, 2, mid - half + 10);
    ctx.fillText(`−${max.toPrecision(2)}`, 2, mid + half);
    ctx.strokeStyle = '#3a3f4c';
    ctx.beginPath();
    ctx.moveTo(left, mid + 0.5);
    ctx.lineTo(W - right, mid + 0.5);
    ctx.stroke();
    ctx.fillStyle = color;
    for (let k = 0; k < n; k++) {
      const h = (Math.abs(w[k]) / max) * half;
      const x = left + k * step + (step - bar) / 2;
      ctx.fillRect(x, w[k] >= 0 ? mid - h : mid, bar, Math.max(h, 0.5));
    }
  };
  strip(a.weights, 0, H / 2, '#ffb547', `α_A · ${a.label}`);
  strip(b.weights, H / 2, H / 2, '#5ab0ff', `α_B · ${b.label}`);
}
