/**
 * The explain-volume figure: the three orthogonal slices through M's centre (./figure.ts) above a
 * montage of axial slices (constant d, evenly spaced over the slices the CAM or M reaches, or the
 * whole depth) with the same overlay, CAM scaled by its maximum over the whole volume.
 */
import { createImage, type RgbaImage } from '../image.js';
import { renderFigure } from '../render/figure.js';
import { overlayHeatmap } from '../render/overlay.js';
import { orthogonalFigure, sliceOf, type OrthogonalFigureOptions } from './figure.js';
import type { Dims3 } from './regions.js';

export interface MontageOptions extends OrthogonalFigureOptions {
  /** Axial slices in the montage (default 12, at most the depth). */
  slices?: number;
  /** Montage panels per row (default 6). */
  perRow?: number;
}

function displayRange(v: ArrayLike<number>): [number, number] {
  const s = Float32Array.from(v).sort();
  return [s[Math.floor(0.01 * (s.length - 1))], s[Math.ceil(0.99 * (s.length - 1))]];
}

/** The depth indices of the montage: evenly spaced over [first, last] d where the CAM or M is non-zero. */
export function montageSlices(cam: ArrayLike<number>, mask: ArrayLike<number>, dims: Dims3, count: number): number[] {
  const [D, H, W] = dims;
  let first = D;
  let last = -1;
  for (let d = 0; d < D; d++)
    for (let i = d * H * W; i < (d + 1) * H * W; i++)
      if (cam[i] > 0 || mask[i] !== 0) {
        first = Math.min(first, d);
        last = d;
        break;
      }
  if (last < 0) [first, last] = [0, D - 1];
  const n = Math.min(count, last - first + 1);
  if (n <= 1) return [first];
  return Array.from(new Set(Array.from({ length: n }, (_, i) => Math.round(first + (i * (last - first)) / (n - 1)))));
}

/** Images one below the other on white, left-aligned. */
function stack(images: RgbaImage[]): RgbaImage {
  const width = Math.max(...images.map((im) => im.width));
  const height = images.reduce((s, im) => s + im.height, 0);
  const out = createImage(width, height);
  out.data.fill(255);
  let y = 0;
  for (const im of images) {
    for (let r = 0; r < im.height; r++) out.data.set(im.data.subarray(r * im.width * 4, (r + 1) * im.width * 4), (y + r) * width * 4);
    y += im.height;
  }
  return out;
}

/** Orthogonal slices through M's centre, then the axial montage (see the module note). */
export function volumeFigure(
  volume: ArrayLike<number>,
  dims: Dims3,
  cam: ArrayLike<number>,
  mask: ArrayLike<number>,
  options: MontageOptions = {},
): RgbaImage {
  const top = orthogonalFigure(volume, dims, cam, mask, options);
  const [lo, hi] = options.window ?? displayRange(volume);
  let camMax = 0;
  for (let i = 0; i < cam.length; i++) camMax = Math.max(camMax, cam[i]);
  const indices = montageSlices(cam, mask, dims, Math.max(1, options.slices ?? 12));
  const panels = indices.map((d) => {
    const v = sliceOf(volume, dims, 'axial', d);
    const h = sliceOf(cam, dims, 'axial', d);
    const m = sliceOf(mask, dims, 'axial', d);
    const grey = createImage(v.cols, v.rows);
    for (let i = 0; i < v.data.length; i++) {
      const g = Math.round(255 * Math.min(1, Math.max(0, (v.data[i] - lo) / Math.max(hi - lo, 1e-12))));
      grey.data.set([g, g, g, 255], 4 * i);
    }
    const heat = camMax > 0 ? h.data.map((x) => x / camMax) : h.data;
    return {
      image: overlayHeatmap(grey, heat, { colormap: options.colormap, opacity: options.opacity }),
      title: `axial d=${d}`,
      contour: Uint8Array.from(m.data, (x) => (x ? 1 : 0)),
    };
  });
  const perRow = Math.max(1, options.perRow ?? 6);
  const rows: RgbaImage[] = [top];
  for (let i = 0; i < panels.length; i += perRow) rows.push(renderFigure(panels.slice(i, i + perRow), { minPanelSize: 128 }));
  return stack(rows);
}
