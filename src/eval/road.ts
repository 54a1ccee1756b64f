/**
 * ROAD's noisy linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
 * for Attribution Methods"): the removed pixels are not set to a constant (whose shape leaks the
 * mask to the model) but filled from their neighbourhood. Each removed pixel's value is the
 * weighted mean of its 8 neighbours (weight 1/6 for the 4 direct ones, 1/12 for the diagonals),
 * removed neighbours included, which is one sparse linear system per channel:
 *   x_i Σ_j w_ij − Σ_{j removed} w_ij x_j = Σ_{j kept} w_ij x_j,
 * symmetric and positive definite on every group of removed pixels that touches a kept one. It is
 * solved exactly by a banded Cholesky factorisation (unknowns in raster order, so a pixel's
 * removed neighbours lie within width + 1 places: the band), one factorisation shared by all
 * channels — as the reference implementation solves it with a sparse direct solver. A group with
 * no kept neighbour at all takes the mean of the kept pixels (0 when none is kept). Then Gaussian
 * noise of standard deviation `noise` is added to the imputed pixels (a seeded stream).
 */
import { Rng } from '../data/prng.js';
import { SegGradCamError } from '../errors.js';

const NEIGHBOURS: Array<[number, number, number]> = [
  [-1, 0, 1 / 6],
  [1, 0, 1 / 6],
  [0, -1, 1 / 6],
  [0, 1, 1 / 6],
  [-1, -1, 1 / 12],
  [-1, 1, 1 / 12],
  [1, -1, 1 / 12],
  [1, 1, 1 / 12],
];

export interface ImputeOptions {
  /** Standard deviation of the noise added to imputed pixels (default 0.01, as in ROAD). */
  noise?: number;
  seed?: number;
}

/**
 * Imputes the pixels where `removed` is 1 in an interleaved image [height, width, channels]
 * (Float32Array of height·width·channels values). Returns a new array; kept pixels are unchanged.
 */
export function noisyLinearImpute(
  image: Float32Array,
  width: number,
  height: number,
  channels: number,
  removed: ArrayLike<number>,
  options: ImputeOptions = {},
): Float32Array {
  if (image.length !== width * height * channels || removed.length !== width * height)
    throw new SegGradCamError('the image and the removal mask do not match the given size', 'shape');
  const out = Float32Array.from(image);
  const index = new Int32Array(width * height).fill(-1);
  let n = 0;
  for (let p = 0; p < width * height; p++) if (removed[p]) index[p] = n++;
  const unknown = new Int32Array(n);
  for (let p = 0; p < width * height; p++) if (index[p] >= 0) unknown[index[p]] = p;
  if (n === 0) return out;

  // Neighbours of each unknown in flat arrays: pixel (or −1 off the image) and weight, 8 per unknown.
  const nbPixel = new Int32Array(n * 8).fill(-1);
  const nbWeight = new Float64Array(n * 8);
  for (let i = 0; i < n; i++) {
    const p = unknown[i];
    const x = p % width;
    const y = (p - x) / width;
    for (let k = 0; k < 8; k++) {
      const [dx, dy, w] = NEIGHBOURS[k];
      const nx = x + dx;
      const ny = y + dy;
      if (nx >= 0 && ny >= 0 && nx < width && ny < height) {
        nbPixel[i * 8 + k] = ny * width + nx;
        nbWeight[i * 8 + k] = w;
      }
    }
  }
  // Groups of removed pixels (8-connected) without a kept neighbour: a flood fill.
  const anchored = new Uint8Array(n);
  const seen = new Uint8Array(n);
  const members = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    if (seen[s]) continue;
    let size = 1;
    members[0] = s;
    seen[s] = 1;
    let touches = false;
    for (let q = 0; q < size; q++) {
      const i = members[q];
      for (let k = i * 8; k < i * 8 + 8; k++) {
        const p = nbPixel[k];
        if (p < 0) continue;
        const j = index[p];
        if (j < 0) touches = true;
        else if (!seen[j]) {
          seen[j] = 1;
          members[size++] = j;
        }
      }
    }
    if (touches) for (let q = 0; q < size; q++) anchored[members[q]] = 1;
  }

  const keptMean = new Float64Array(channels);
  const kept = width * height - n;
  for (let p = 0; p < width * height; p++) if (!removed[p]) for (let c = 0; c < channels; c++) keptMean[c] += image[p * channels + c];
  for (let c = 0; c < channels; c++) keptMean[c] = kept > 0 ? keptMean[c] / kept : 0;

  // The band: the largest index distance between two coupled anchored unknowns (≤ width + 1).
  let band = 0;
  for (let i = 0; i < n; i++) {
    if (!anchored[i]) continue;
    for (let k = i * 8; k < i * 8 + 8; k++) if (nbPixel[k] >= 0 && index[nbPixel[k]] >= 0) band = Math.max(band, i - index[nbPixel[k]]);
  }
  // A (lower band, row-major: A(i, j) at i·(band+1) + j − i + band) and b per channel. Rows of
  // unanchored unknowns are the identity (their value is set to the kept mean below).
  const stride = band + 1;
  const L = new Float64Array(n * stride);
  const b = new Float64Array(n * channels);
  for (let i = 0; i < n; i++) {
    if (!anchored[i]) {
      L[i * stride + band] = 1;
      continue;
    }
    for (let k = i * 8; k < i * 8 + 8; k++) {
      const p = nbPixel[k];
      if (p < 0) continue;
      const w = nbWeight[k];
      L[i * stride + band] += w;
      const j = index[p];
      if (j < 0) for (let c = 0; c < channels; c++) b[i * channels + c] += w * image[p * channels + c];
      else if (j < i) L[i * stride + j - i + band] -= w;
    }
  }
  bandedCholesky(L, n, band);
  const x = bandedSolve(L, n, band, b, channels);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < channels; c++) out[unknown[i] * channels + c] = anchored[i] ? x[i * channels + c] : keptMean[c];

  const sigma = options.noise ?? 0.01;
  if (sigma > 0) {
    const rng = new Rng(options.seed ?? 0);
    for (const p of unknown) for (let c = 0; c < channels; c++) out[p * channels + c] += sigma * rng.normal();
  }
  return out;
}

/**
 * In place: the lower band of a symmetric positive-definite matrix (as stored above) becomes its
 * Cholesky factor L (A = L Lᵀ). Cost n·band².
 */
export function bandedCholesky(L: Float64Array, n: number, band: number): void {
  const stride = band + 1;
  for (let i = 0; i < n; i++) {
    const ri = i * stride - i + band; // L(i, j) = L[ri + j]
    for (let j = Math.max(0, i - band); j <= i; j++) {
      const rj = j * stride - j + band;
      let s = L[ri + j];
      for (let k = Math.max(0, i - band); k < j; k++) s -= L[ri + k] * L[rj + k];
      if (j < i) L[ri + j] = s / L[rj + j];
      else {
        if (!(s > 0)) throw new SegGradCamError('the imputation system is not positive definite', 'numeric');
        L[ri + i] = Math.sqrt(s);
      }
    }
  }
}

/** Solves L Lᵀ x = b for each of `channels` right-hand sides (interleaved, b[i·channels + c]). */
export function bandedSolve(L: Float64Array, n: number, band: number, b: Float64Array, channels: number): Float64Array {
  const stride = band + 1;
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const ri = i * stride - i + band;
    for (let c = 0; c < channels; c++) {
      let s = y[i * channels + c];
      for (let k = Math.max(0, i - band); k < i; k++) s -= L[ri + k] * y[k * channels + c];
      y[i * channels + c] = s / L[ri + i];
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * stride - i + band;
    for (let c = 0; c < channels; c++) y[i * channels + c] /= L[ri + i];
    for (let k = Math.max(0, i - band); k < i; k++)
      for (let c = 0; c < channels; c++) y[k * channels + c] -= L[ri + k] * y[i * channels + c];
  }
  return y;
}
