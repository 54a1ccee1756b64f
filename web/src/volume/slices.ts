/**
 * The three orthogonal views of a [D, H, W] volume, as the library's figure draws them
 * (src/volume/figure.ts sliceOf): axial = constant d (rows h, columns w), coronal = constant h
 * (rows d, d increasing upwards, columns w), sagittal = constant w (rows d upwards, columns h).
 * Pure functions from a view's cells to voxels and back, and the pixels of one slice with the
 * heatmap over it. Voxels are drawn square, whatever the spacing.
 */
import { sliceOf } from '../../../src/volume/figure.js';
import type { Dims3, Voxel } from '../../../src/volume/regions.js';

export type View = 'axial' | 'coronal' | 'sagittal';
export const VIEWS: readonly View[] = ['axial', 'coronal', 'sagittal'];

/** The voxel axis a view's slider moves: d, h or w. */
export const VIEW_AXIS: Record<View, 0 | 1 | 2> = { axial: 0, coronal: 1, sagittal: 2 };

/** A cell of a view's slice: row from the top, column from the left. */
export interface Cell {
  row: number;
  col: number;
}

export function viewSize(view: View, dims: Dims3): { rows: number; cols: number } {
  const [D, H, W] = dims;
  if (view === 'axial') return { rows: H, cols: W };
  if (view === 'coronal') return { rows: D, cols: W };
  return { rows: D, cols: H };
}

/** The voxel under a cell of a view at slice `index`. */
export function voxelAt(view: View, dims: Dims3, index: number, cell: Cell): Voxel {
  const D = dims[0];
  if (view === 'axial') return [index, cell.row, cell.col];
  if (view === 'coronal') return [D - 1 - cell.row, index, cell.col];
  return [D - 1 - cell.row, cell.col, index];
}

/** Where a voxel shows on a view: its cell and the slice that contains it. */
export function cellOf(view: View, dims: Dims3, v: Voxel): Cell & { index: number } {
  const D = dims[0];
  if (view === 'axial') return { row: v[1], col: v[2], index: v[0] };
  if (view === 'coronal') return { row: D - 1 - v[0], col: v[2], index: v[1] };
  return { row: D - 1 - v[0], col: v[1], index: v[2] };
}

/**
 * The box (d0, h0, w0, d1, h1, w1, corners included) of a rectangle dragged on a view at slice
 * `index`, extended over `depth` slices across the view, centred on that slice (clipped to the volume).
 */
export function boxFromDrag(
  view: View,
  dims: Dims3,
  index: number,
  a: Cell,
  b: Cell,
  depth: number,
): [number, number, number, number, number, number] {
  const axis = VIEW_AXIS[view];
  const n = Math.max(1, Math.floor(depth));
  const lo = Math.max(0, index - Math.floor((n - 1) / 2));
  const hi = Math.min(dims[axis] - 1, lo + n - 1);
  const p = voxelAt(view, dims, index, a);
  const q = voxelAt(view, dims, index, b);
  const min = p.map((x, i) => Math.min(x, q[i]));
  const max = p.map((x, i) => Math.max(x, q[i]));
  min[axis] = lo;
  max[axis] = hi;
  return [min[0], min[1], min[2], max[0], max[1], max[2]];
}

export interface SliceLayers {
  volume: Float32Array;
  /** Grey levels: value lo → black, hi → white. */
  range: [number, number];
  /** The heatmap on the volume grid, and the value drawn at full colour (its maximum). */
  heat?: { data: Float32Array; max: number } | null;
  /** 0..1: the heatmap's weight where it is at its maximum (√t of it at t). */
  opacity: number;
  /** 256 × RGB of the colormap. */
  lut: Uint8Array;
  /** The prediction on the volume grid and the colour of each class (null: not drawn; class 0 never). */
  labels?: { data: Int32Array; colors: Array<[number, number, number]> } | null;
}

/** The RGBA pixels of a view's slice (one pixel per cell). */
export function slicePixels(
  view: View,
  dims: Dims3,
  index: number,
  layers: SliceLayers,
): { rgba: Uint8ClampedArray<ArrayBuffer>; rows: number; cols: number } {
  const s = sliceOf(layers.volume, dims, view, index);
  const heat = layers.heat ? sliceOf(layers.heat.data, dims, view, index).data : null;
  const labels = layers.labels ? sliceOf(layers.labels.data, dims, view, index).data : null;
  const [lo, hi] = layers.range;
  const span = hi > lo ? hi - lo : 1;
  const rgba = new Uint8ClampedArray(s.rows * s.cols * 4);
  const op = Math.min(1, Math.max(0, layers.opacity));
  const hmax = layers.heat && layers.heat.max > 0 ? layers.heat.max : 1;
  for (let i = 0; i < s.data.length; i++) {
    const g = Math.min(255, Math.max(0, ((s.data[i] - lo) / span) * 255));
    let r = g;
    let gg = g;
    let b = g;
    if (labels && layers.labels && labels[i] > 0) {
      const c = layers.labels.colors[labels[i] % layers.labels.colors.length];
      r = 0.6 * r + 0.4 * c[0];
      gg = 0.6 * gg + 0.4 * c[1];
      b = 0.6 * b + 0.4 * c[2];
    }
    if (heat) {
      const t = Math.min(1, Math.max(0, heat[i] / hmax));
      const k = Math.min(255, Math.floor(t * 256)) * 3;
      // Where the CAM is 0 the volume shows through: the colour's weight grows with √t.
      const a = op * Math.sqrt(t);
      r = (1 - a) * r + a * layers.lut[k];
      gg = (1 - a) * gg + a * layers.lut[k + 1];
      b = (1 - a) * b + a * layers.lut[k + 2];
    }
    rgba[i * 4] = r;
    rgba[i * 4 + 1] = gg;
    rgba[i * 4 + 2] = b;
    rgba[i * 4 + 3] = 255;
  }
  return { rgba, rows: s.rows, cols: s.cols };
}

/** The edges of a mask's cells on a view's slice (each a segment between cell corners, in cells): M's outline. */
export function maskOutline(view: View, dims: Dims3, index: number, mask: ArrayLike<number>): Array<[number, number, number, number]> {
  const s = sliceOf(mask, dims, view, index);
  const inside = (r: number, c: number) => r >= 0 && c >= 0 && r < s.rows && c < s.cols && s.data[r * s.cols + c] !== 0;
  const out: Array<[number, number, number, number]> = [];
  for (let r = 0; r < s.rows; r++)
    for (let c = 0; c < s.cols; c++) {
      if (!inside(r, c)) continue;
      if (!inside(r - 1, c)) out.push([c, r, c + 1, r]);
      if (!inside(r + 1, c)) out.push([c, r + 1, c + 1, r + 1]);
      if (!inside(r, c - 1)) out.push([c, r, c, r + 1]);
      if (!inside(r, c + 1)) out.push([c + 1, r, c + 1, r + 1]);
    }
  return out;
}

/** Nearest resampling of a [d, h, w] grid onto the volume [D, H, W] (each voxel takes the cell containing its centre). */
export function toVolumeGrid<T extends Float32Array | Int32Array>(src: T, from: Dims3, to: Dims3): T {
  if (from[0] === to[0] && from[1] === to[1] && from[2] === to[2]) return src;
  const out = new (src.constructor as new (n: number) => T)(to[0] * to[1] * to[2]);
  const f = (x: number, i: number) => Math.min(from[i] - 1, Math.floor(((x + 0.5) * from[i]) / to[i]));
  let k = 0;
  for (let d = 0; d < to[0]; d++)
    for (let h = 0; h < to[1]; h++) for (let w = 0; w < to[2]; w++) out[k++] = src[(f(d, 0) * from[1] + f(h, 1)) * from[2] + f(w, 2)];
  return out;
}
