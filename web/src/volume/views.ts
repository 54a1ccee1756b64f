/**
 * The three slice panels of the volume page: each a canvas and a slider. A panel draws its slice
 * (grey volume, prediction, heatmap), the crosshair at the current voxel and M's outline, and
 * turns a click into a voxel and a drag into a rectangle of cells (./slices.ts does the geometry).
 */
import type { Dims3, Voxel } from '../../../src/volume/regions.js';
import { cellOf, maskOutline, slicePixels, viewSize, VIEW_AXIS, voxelAt, type Cell, type SliceLayers, type View } from './slices.js';

/** Canvas pixels per slice cell: the slice's longer side drawn at about this many pixels. */
const TARGET = 480;

export interface PanelScene {
  dims: Dims3;
  layers: SliceLayers;
  /** The crosshair. */
  voxel: Voxel | null;
  /** M on the volume grid (its outline is drawn), or null. */
  mask: Float32Array | null;
}

export interface PanelEvents {
  click(view: View, voxel: Voxel): void;
  drag(view: View, index: number, a: Cell, b: Cell): void;
  slice(view: View, index: number): void;
}

export class SlicePanel {
  readonly canvas: HTMLCanvasElement;
  readonly slider: HTMLInputElement;
  private readonly label: HTMLElement;
  private scene: PanelScene | null = null;
  index = 0;
  private start: Cell | null = null;
  private dragTo: Cell | null = null;

  constructor(
    readonly view: View,
    root: HTMLElement,
    private readonly events: PanelEvents,
  ) {
    this.canvas = root.querySelector('canvas') as HTMLCanvasElement;
    this.slider = root.querySelector('input[type="range"]') as HTMLInputElement;
    this.label = root.querySelector('.slice-index') as HTMLElement;
    this.slider.addEventListener('input', () => {
      this.index = Number(this.slider.value);
      this.draw();
      this.events.slice(this.view, this.index);
    });
    this.canvas.addEventListener('pointerdown', (ev) => {
      const c = this.cellAt(ev);
      if (!c) return;
      this.start = c;
      this.dragTo = null;
      this.canvas.setPointerCapture(ev.pointerId);
    });
    this.canvas.addEventListener('pointermove', (ev) => {
      if (!this.start) return;
      const c = this.cellAt(ev, true);
      if (c && (c.row !== this.start.row || c.col !== this.start.col)) {
        this.dragTo = c;
        this.draw();
      }
    });
    this.canvas.addEventListener('pointerup', (ev) => {
      const a = this.start;
      const b = this.dragTo ?? this.cellAt(ev, true);
      this.start = null;
      this.dragTo = null;
      if (!a || !b || !this.scene) return;
      if (a.row === b.row && a.col === b.col) this.events.click(this.view, voxelAt(this.view, this.scene.dims, this.index, a));
      else this.events.drag(this.view, this.index, a, b);
      this.draw();
    });
  }

  /** A new volume: sizes, and the slider to the middle slice. */
  reset(dims: Dims3): void {
    const n = dims[VIEW_AXIS[this.view]];
    this.slider.max = String(n - 1);
    this.index = Math.floor(n / 2);
    this.slider.value = String(this.index);
    const { rows, cols } = viewSize(this.view, dims);
    const s = Math.max(1, Math.floor(TARGET / Math.max(rows, cols)));
    this.canvas.width = cols * s;
    this.canvas.height = rows * s;
  }

  /** Moves the slider to the slice that contains the voxel. */
  follow(v: Voxel): void {
    if (!this.scene) return;
    this.index = cellOf(this.view, this.scene.dims, v).index;
    this.slider.value = String(this.index);
  }

  setScene(scene: PanelScene): void {
    this.scene = scene;
    this.draw();
  }

  private cellAt(ev: PointerEvent, clamp = false): Cell | null {
    if (!this.scene) return null;
    const r = this.canvas.getBoundingClientRect();
    const { rows, cols } = viewSize(this.view, this.scene.dims);
    let col = Math.floor(((ev.clientX - r.left) / r.width) * cols);
    let row = Math.floor(((ev.clientY - r.top) / r.height) * rows);
    if (clamp) {
      col = Math.min(cols - 1, Math.max(0, col));
      row = Math.min(rows - 1, Math.max(0, row));
    } else if (col < 0 || row < 0 || col >= cols || row >= rows) return null;
    return { row, col };
  }

  draw(): void {
    const scene = this.scene;
    const ctx = this.canvas.getContext('2d');
    if (!scene || !ctx) return;
    const { dims } = scene;
    this.label.textContent = `${'dhw'[VIEW_AXIS[this.view]]} = ${this.index} / ${dims[VIEW_AXIS[this.view]] - 1}`;
    const { rgba, rows, cols } = slicePixels(this.view, dims, this.index, scene.layers);
    const small = new OffscreenCanvas(cols, rows);
    (small.getContext('2d') as OffscreenCanvasRenderingContext2D).putImageData(new ImageData(rgba, cols, rows), 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
    const sx = this.canvas.width / cols;
    const sy = this.canvas.height / rows;
    if (scene.mask) {
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
      ctx.lineWidth = 2;
      ctx.beginPath();
      for (const [x0, y0, x1, y1] of maskOutline(this.view, dims, this.index, scene.mask)) {
        ctx.moveTo(x0 * sx, y0 * sy);
        ctx.lineTo(x1 * sx, y1 * sy);
      }
      ctx.stroke();
    }
    if (scene.voxel) {
      const c = cellOf(this.view, dims, scene.voxel);
      const x = (c.col + 0.5) * sx;
      const y = (c.row + 0.5) * sy;
      ctx.strokeStyle = c.index === this.index ? 'rgba(255, 181, 71, 0.95)' : 'rgba(255, 181, 71, 0.45)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(this.canvas.width, y);
      ctx.moveTo(x, 0);
      ctx.lineTo(x, this.canvas.height);
      ctx.stroke();
      ctx.strokeRect(c.col * sx, c.row * sy, sx, sy);
    }
    if (this.start && this.dragTo) {
      const r0 = Math.min(this.start.row, this.dragTo.row);
      const c0 = Math.min(this.start.col, this.dragTo.col);
      const r1 = Math.max(this.start.row, this.dragTo.row) + 1;
      const c1 = Math.max(this.start.col, this.dragTo.col) + 1;
      ctx.strokeStyle = '#ffb547';
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 2;
      ctx.strokeRect(c0 * sx, r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy);
      ctx.setLineDash([]);
    }
  }
}
