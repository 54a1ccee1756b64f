/**
 * A PNG-ready figure of three orthogonal slices through a point (M's centre): the volume in grey
 * with the CAM over it, M's outline and a marker at the point. Slices follow the voxel axes
 * ([D, H, W] = NIfTI k, j, i), not the patient's: "axial" is the slice of constant d (rows h,
 * columns w), "coronal" constant h (rows d, k increasing upwards), "sagittal" constant w (rows d,
 * k increasing upwards). Voxels are drawn square whatever the spacing.
 */
import { createImage, type RgbaImage } from '../image.js';
import { renderFigure } from '../render/figure.js';
import { overlayHeatmap } from '../render/overlay.js';
import type { ColormapName } from '../render/colormap.js';
import type { Dims3, Voxel } from './regions.js';

export type SliceAxis = 'axial' | 'coronal' | 'sagittal';

/** One slice of a [D, H, W] volume as a row-major [rows, cols] map (see the module note for the orientation). */
export function sliceOf(
  vol: ArrayLike<number>,
  dims: Dims3,
  axis: SliceAxis,
  index: number,
): { data: Float32Array; rows: number; cols: number } {
  const [D, H, W] = dims;
  const at = (d: number, h: number, w: number) => vol[(d * H + h) * W + w];
  if (axis === 'axial') {
    const data = new Float32Array(H * W);
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) data[h * W + w] = at(index, h, w);
    return { data, rows: H, cols: W };
  }
  if (axis === 'coronal') {
    const data = new Float32Array(D * W);
    for (let r = 0; r < D; r++) for (let w = 0; w < W; w++) data[r * W + w] = at(D - 1 - r, index, w);
    return { data, rows: D, cols: W };
  }
  const data = new Float32Array(D * H);
  for (let r = 0; r < D; r++) for (let h = 0; h < H; h++) data[r * H + h] = at(D - 1 - r, h, index);
  return { data, rows: D, cols: H };
}

/** The centre of a mask's voxels (rounded mean of their coordinates). */
export function maskCentre(mask: ArrayLike<number>, dims: Dims3): Voxel {
  const [, H, W] = dims;
  const s = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    s[0] += Math.floor(i / (H * W));
    s[1] += Math.floor(i / W) % H;
    s[2] += i % W;
    n++;
  }
  if (n === 0) throw new RangeError('maskCentre: the mask is empty');
  return s.map((v) => Math.round(v / n)) as Voxel;
}

export interface OrthogonalFigureOptions {
  /** The slices' point (default: M's centre). */
  centre?: Voxel;
  colormap?: ColormapName;
  opacity?: number;
  /** Display range of the volume (default: its 1st and 99th percentiles). */
  window?: [number, number];
}

function range(v: ArrayLike<number>): [number, number] {
  const s = Float32Array.from(v).sort();
  return [s[Math.floor(0.01 * (s.length - 1))], s[Math.ceil(0.99 * (s.length - 1))]];
}

/**
 * Three panels (axial, coronal, sagittal through the centre): the volume, the CAM (on the volume
 * grid, scaled by its maximum over the whole volume) over it, M's outline and the centre marked.
 */
export function orthogonalFigure(
  volume: ArrayLike<number>,
  dims: Dims3,
  cam: ArrayLike<number>,
  mask: ArrayLike<number>,
  options: OrthogonalFigureOptions = {},
): RgbaImage {
  const c = options.centre ?? maskCentre(mask, dims);
  const [lo, hi] = options.window ?? range(volume);
  let camMax = 0;
  for (let i = 0; i < cam.length; i++) camMax = Math.max(camMax, cam[i]);
  const panels = (['axial', 'coronal', 'sagittal'] as const).map((axis) => {
    const index = axis === 'axial' ? c[0] : axis === 'coronal' ? c[1] : c[2];
    const v = sliceOf(volume, dims, axis, index);
    const h = sliceOf(cam, dims, axis, index);
    const m = sliceOf(mask, dims, axis, index);
    const grey = createImage(v.cols, v.rows);
    for (let i = 0; i < v.data.length; i++) {
      const g = Math.round(255 * Math.min(1, Math.max(0, (v.data[i] - lo) / Math.max(hi - lo, 1e-12))));
      grey.data.set([g, g, g, 255], 4 * i);
    }
    const heat = camMax > 0 ? h.data.map((x) => x / camMax) : h.data;
    const image = overlayHeatmap(grey, heat, { colormap: options.colormap, opacity: options.opacity });
    // the point in this panel's rows/cols
    const [row, col] = axis === 'axial' ? [c[1], c[2]] : axis === 'coronal' ? [dims[0] - 1 - c[0], c[2]] : [dims[0] - 1 - c[0], c[1]];
    return {
      image,
      title: `${axis} ${axis === 'axial' ? 'd' : axis === 'coronal' ? 'h' : 'w'}=${index}`,
      marker: [col, row] as [number, number],
      contour: Uint8Array.from(m.data, (x) => (x ? 1 : 0)),
      legend: axis === 'sagittal' ? { type: 'colorbar' as const, colormap: options.colormap ?? 'turbo', min: 0, max: camMax } : undefined,
    };
  });
  return renderFigure(panels);
}
