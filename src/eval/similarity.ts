/**
 * Similarity of two maps for the sanity checks (Adebayo et al. 2018, "Sanity checks for saliency
 * maps", §3): rank correlation of the signed and of the absolute values, the structural similarity
 * index (SSIM) and the correlation of histograms of oriented gradients (HOG). Pure functions on
 * row-major Float32Arrays (width × height), so each is checked by hand on tiny arrays.
 */
import { SegGradCamError } from '../errors.js';
import { pearson, spearman } from './stats.js';

export interface SsimOptions {
  /** Side of the square window (odd; default 7, as scikit-image; shrunk to the image when smaller). */
  window?: number;
  /** The dynamic range L of the values (default 1: maps scaled to [0, 1]). */
  range?: number;
  /** K1 and K2 of Wang et al. (defaults 0.01 and 0.03). */
  k1?: number;
  k2?: number;
}

function checkSize(a: ArrayLike<number>, b: ArrayLike<number>, width: number, height: number, what: string): void {
  if (a.length !== width * height || b.length !== width * height)
    throw new SegGradCamError(`${what}: maps of ${a.length} and ${b.length} values for a ${width}x${height} grid`, 'shape');
}

/**
 * SSIM (Wang, Bovik, Sheikh & Simoncelli 2004): over every position of a uniform w×w window lying
 * inside the image ("valid" windows), with the window's means μ, population variances σ² and
 * covariance σ_ab,
 *   SSIM = (2 μ_a μ_b + C1)(2 σ_ab + C2) / ((μ_a² + μ_b² + C1)(σ_a² + σ_b² + C2)),
 * C1 = (K1 L)², C2 = (K2 L)²; the result is the mean over the windows. 1 for identical maps.
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, width: number, height: number, options: SsimOptions = {}): number {
  checkSize(a, b, width, height, 'ssim');
  let w = options.window ?? 7;
  if (!Number.isInteger(w) || w < 1 || w % 2 === 0) throw new SegGradCamError(`ssim: the window must be an odd integer, got ${w}`, 'usage');
  const smaller = Math.min(width, height);
  if (w > smaller) w = smaller % 2 === 1 ? smaller : smaller - 1;
  const L = options.range ?? 1;
  const c1 = ((options.k1 ?? 0.01) * L) ** 2;
  const c2 = ((options.k2 ?? 0.03) * L) ** 2;
  const np = w * w;
  let total = 0;
  let windows = 0;
  for (let y0 = 0; y0 + w <= height; y0++) {
    for (let x0 = 0; x0 + w <= width; x0++) {
      let sa = 0;
      let sb = 0;
      for (let y = y0; y < y0 + w; y++)
        for (let x = x0; x < x0 + w; x++) {
          sa += a[y * width + x];
          sb += b[y * width + x];
        }
      const ma = sa / np;
      const mb = sb / np;
      let vaa = 0;
      let vbb = 0;
      let vab = 0;
      for (let y = y0; y < y0 + w; y++)
        for (let x = x0; x < x0 + w; x++) {
          const da = a[y * width + x] - ma;
          const db = b[y * width + x] - mb;
          vaa += da * da;
          vbb += db * db;
          vab += da * db;
        }
      vaa /= np;
      vbb /= np;
      vab /= np;
      total += ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (vaa + vbb + c2));
      windows++;
    }
  }
  return total / windows;
}

export interface HogOptions {
  /** Cell side in pixels (default 8; cells that do not fit at the right and bottom are dropped). */
  cell?: number;
  /** Orientation bins over 0–180° (default 9: centres 0°, 20°, …, 160°). */
  bins?: number;
  /** Block side in cells, blocks L2-normalised with a step of one cell (default 2). */
  block?: number;
}

/**
 * Histogram of oriented gradients (Dalal & Triggs 2005), unsigned: gradients by centred
 * differences [−1, 0, 1] (edge pixels clamped), orientation θ = atan2(g_y, g_x) folded into
 * [0°, 180°), each pixel voting its magnitude into the two nearest bins (bin k centred at k·180/bins,
 * linear interpolation, cyclic), per cell; then each block of block×block cells is concatenated and
 * divided by its L2 norm (+1e-12), blocks stepping one cell. Returns the feature vector.
 */
export function hog(map: ArrayLike<number>, width: number, height: number, options: HogOptions = {}): Float64Array {
  if (map.length !== width * height) throw new SegGradCamError(`hog: ${map.length} values for a ${width}x${height} grid`, 'shape');
  const cell = options.cell ?? 8;
  const bins = options.bins ?? 9;
  const block = options.block ?? 2;
  const cw = Math.floor(width / cell);
  const ch = Math.floor(height / cell);
  if (cw < block || ch < block)
    throw new SegGradCamError(`hog: a ${width}x${height} map has fewer than ${block}x${block} cells of ${cell} px`, 'shape');
  const hist = new Float64Array(cw * ch * bins);
  const width180 = 180 / bins;
  const at = (x: number, y: number) => map[Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))];
  for (let y = 0; y < ch * cell; y++) {
    for (let x = 0; x < cw * cell; x++) {
      const gx = at(x + 1, y) - at(x - 1, y);
      const gy = at(x, y + 1) - at(x, y - 1);
      const mag = Math.hypot(gx, gy);
      if (mag === 0) continue;
      let theta = (Math.atan2(gy, gx) * 180) / Math.PI;
      theta = ((theta % 180) + 180) % 180;
      const pos = theta / width180;
      const lo = Math.floor(pos);
      const frac = pos - lo;
      const base = (Math.floor(y / cell) * cw + Math.floor(x / cell)) * bins;
      hist[base + (lo % bins)] += mag * (1 - frac);
      hist[base + ((lo + 1) % bins)] += mag * frac;
    }
  }
  const bx = cw - block + 1;
  const by = ch - block + 1;
  const size = block * block * bins;
  const out = new Float64Array(bx * by * size);
  for (let j = 0; j < by; j++) {
    for (let i = 0; i < bx; i++) {
      const o = (j * bx + i) * size;
      let k = 0;
      for (let v = 0; v < block; v++)
        for (let u = 0; u < block; u++) for (let q = 0; q < bins; q++) out[o + k++] = hist[((j + v) * cw + i + u) * bins + q];
      let norm = 0;
      for (let q = 0; q < size; q++) norm += out[o + q] ** 2;
      norm = Math.sqrt(norm) + 1e-12;
      for (let q = 0; q < size; q++) out[o + q] /= norm;
    }
  }
  return out;
}

/** HOG similarity (Adebayo et al.): the Pearson correlation of the two maps' HOG vectors; NaN when one is constant (a flat map). */
export function hogSimilarity(a: ArrayLike<number>, b: ArrayLike<number>, width: number, height: number, options: HogOptions = {}): number {
  checkSize(a, b, width, height, 'hogSimilarity');
  return pearson(hog(a, width, height, options), hog(b, width, height, options));
}

/** |v| scaled to [0, 1] by its maximum (all zeros stay zeros): how SSIM and HOG see a map. */
export function absScaled(v: ArrayLike<number>): Float32Array {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]));
  return Float32Array.from(v, (x) => (max > 0 ? Math.abs(x) / max : 0));
}

/** The four similarities of Adebayo et al. between an original and a changed map. */
export interface Similarity {
  /** Spearman rank correlation of the signed values. */
  spearman: number;
  /** Spearman rank correlation of the absolute values. */
  absSpearman: number;
  /** SSIM of the absolute maps, each scaled to [0, 1] by its maximum. */
  ssim: number;
  /** Pearson correlation of the HOG vectors of the absolute maps scaled to [0, 1]. */
  hog: number;
}

/** All four similarities of two maps (callers keep all-zero maps out: they have no ranking). */
export function similarity(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  width: number,
  height: number,
  options: { ssim?: SsimOptions; hog?: HogOptions } = {},
): Similarity {
  checkSize(a, b, width, height, 'similarity');
  const absA = absScaled(a);
  const absB = absScaled(b);
  const cell = options.hog?.cell ?? 8;
  const block = options.hog?.block ?? 2;
  const hogFits = Math.floor(width / cell) >= block && Math.floor(height / cell) >= block;
  return {
    spearman: spearman(a, b),
    absSpearman: spearman(absA, absB),
    ssim: ssim(absA, absB, width, height, options.ssim),
    hog: hogFits ? hogSimilarity(absA, absB, width, height, options.hog) : Number.NaN,
  };
}
