import { SegGradCamError } from '../errors.js';

/** How KernelSHAP groups pixels into features: SLIC superpixels or a regular grid. */
export type Segmentation = 'slic' | 'grid';

/**
 * A label per pixel (H·W, row-major, labels 0..n−1, every label used) and the number of segments n.
 * `values` are the image's H·W·C values (row-major, channels last).
 */
export interface Segments {
  labels: Int32Array;
  count: number;
}

/** A regular grid of about `count` square-ish cells (rows × cols chosen from the aspect ratio). */
export function gridSegments(H: number, W: number, count: number): Segments {
  const rows = Math.max(1, Math.min(H, Math.round(Math.sqrt((count * H) / W))));
  const cols = Math.max(1, Math.min(W, Math.round(count / rows)));
  const labels = new Int32Array(H * W);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) labels[y * W + x] = Math.floor((y * rows) / H) * cols + Math.floor((x * cols) / W);
  return { labels, count: rows * cols };
}

/**
 * SLIC superpixels (Achanta et al. 2012): cluster centres start on a grid of step S = √(H·W/count), move to the
 * lowest-gradient pixel of their 3×3 neighbourhood, then `iterations` rounds of local k-means: each pixel joins the
 * centre within 2S × 2S minimising D = √(d_c² + (d_s/S)²·m²), d_c the colour distance with values scaled to 0..100
 * (as CIELAB's L, so that skimage's compactness m = 10 means about the same), d_s the spatial distance. Colours are
 * the model input's channels (not CIELAB). Labels are renumbered to 0..n−1 in raster order; segments are not forced
 * to be connected (a feature may be two fragments). `range`: the input's value range, for the colour scale.
 */
export function slicSegments(
  values: Float32Array,
  H: number,
  W: number,
  C: number,
  count: number,
  compactness: number,
  range: [number, number],
  iterations = 10,
): Segments {
  const scale = 100 / Math.max(1e-12, range[1] - range[0]);
  const S = Math.max(1, Math.sqrt((H * W) / Math.max(1, count)));
  const centres: number[][] = []; // [y, x, c0..cC−1]
  const at = (y: number, x: number, c: number) => values[(y * W + x) * C + c] * scale;
  const gradient = (y: number, x: number) => {
    let g = 0;
    for (let c = 0; c < C; c++) {
      const dx = at(y, Math.min(W - 1, x + 1), c) - at(y, Math.max(0, x - 1), c);
      const dy = at(Math.min(H - 1, y + 1), x, c) - at(Math.max(0, y - 1), x, c);
      g += dx * dx + dy * dy;
    }
    return g;
  };
  for (let cy = S / 2; cy < H; cy += S)
    for (let cx = S / 2; cx < W; cx += S) {
      let [by, bx] = [Math.floor(cy), Math.floor(cx)];
      let best = gradient(by, bx);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const [y, x] = [Math.floor(cy) + dy, Math.floor(cx) + dx];
          if (y < 0 || x < 0 || y >= H || x >= W) continue;
          const g = gradient(y, x);
          if (g < best) [best, by, bx] = [g, y, x];
        }
      centres.push([by, bx, ...Array.from({ length: C }, (_, c) => at(by, bx, c))]);
    }
  const labels = new Int32Array(H * W).fill(-1);
  const distance = new Float64Array(H * W);
  const m2 = (compactness / S) ** 2;
  for (let it = 0; it < iterations; it++) {
    distance.fill(Infinity);
    centres.forEach((k, i) => {
      const [y0, y1] = [Math.max(0, Math.floor(k[0] - 2 * S)), Math.min(H, Math.ceil(k[0] + 2 * S) + 1)];
      const [x0, x1] = [Math.max(0, Math.floor(k[1] - 2 * S)), Math.min(W, Math.ceil(k[1] + 2 * S) + 1)];
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) {
          let dc = 0;
          for (let c = 0; c < C; c++) dc += (at(y, x, c) - k[2 + c]) ** 2;
          const d = dc + ((y - k[0]) ** 2 + (x - k[1]) ** 2) * m2;
          if (d < distance[y * W + x]) {
            distance[y * W + x] = d;
            labels[y * W + x] = i;
          }
        }
    });
    const sums = centres.map(() => new Float64Array(3 + C));
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const s = sums[labels[y * W + x]];
        s[0] += y;
        s[1] += x;
        for (let c = 0; c < C; c++) s[2 + c] += at(y, x, c);
        s[2 + C] += 1;
      }
    sums.forEach((s, i) => {
      if (s[2 + C] > 0) centres[i] = Array.from({ length: 2 + C }, (_, j) => s[j] / s[2 + C]);
    });
  }
  // Renumber the labels in use, in raster order of first appearance.
  const map = new Map<number, number>();
  for (let p = 0; p < labels.length; p++) {
    if (!map.has(labels[p])) map.set(labels[p], map.size);
    labels[p] = map.get(labels[p]) as number;
  }
  return { labels, count: map.size };
}

/** Segments of a model input (values H·W·C) by the named segmentation. */
export function segment(
  kind: Segmentation,
  values: Float32Array,
  H: number,
  W: number,
  C: number,
  count: number,
  compactness: number,
  range: [number, number],
): Segments {
  if (kind === 'grid') return gridSegments(H, W, count);
  if (kind === 'slic') return slicSegments(values, H, W, C, count, compactness, range);
  throw new SegGradCamError(`unknown segmentation '${String(kind)}'; expected slic or grid`, 'usage');
}
