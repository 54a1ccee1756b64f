/**
 * ROAD's noisy linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
 * for Attribution Methods"): the removed pixels are not set to a constant (whose shape leaks the
 * mask to the model) but filled from their neighbourhood. Each removed pixel's value is the
 * weighted mean of its 8 neighbours (weight 1/6 for the 4 direct ones, 1/12 for the diagonals),
 * removed neighbours included, which is one sparse linear system per channel:
 *   x_i Σ_j w_ij − Σ_{j removed} w_ij x_j = Σ_{j kept} w_ij x_j,
 * symmetric and positive definite on every group of removed pixels that touches a kept one; it is
 * solved by conjugate gradients. A group with no kept neighbour at all takes the mean of the kept
 * pixels (0 when none is kept). Then Gaussian noise of standard deviation `noise` is added to the
 * imputed pixels (a seeded stream).
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
  /** Conjugate-gradient tolerance on the residual norm (default 1e-10) and iteration cap (default 10 000). */
  tolerance?: number;
  maxIterations?: number;
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
  const unknown: number[] = [];
  for (let p = 0; p < width * height; p++) if (removed[p]) index[p] = unknown.push(p) - 1;
  const n = unknown.length;
  if (n === 0) return out;

  // Neighbour lists of the unknowns; groups without a kept neighbour are found by a flood fill.
  const nbr: Array<Array<[number, number]>> = unknown.map((p) => {
    const x = p % width;
    const y = Math.floor(p / width);
    const list: Array<[number, number]> = [];
    for (const [dx, dy, w] of NEIGHBOURS) {
      const nx = x + dx;
      const ny = y + dy;
      if (nx >= 0 && ny >= 0 && nx < width && ny < height) list.push([ny * width + nx, w]);
    }
    return list;
  });
  const anchored = new Uint8Array(n);
  const group = new Int32Array(n).fill(-1);
  const groups: number[][] = [];
  for (let s = 0; s < n; s++) {
    if (group[s] >= 0) continue;
    const members = [s];
    group[s] = groups.length;
    let touches = false;
    for (let q = 0; q < members.length; q++) {
      for (const [p] of nbr[members[q]]) {
        const j = index[p];
        if (j < 0) touches = true;
        else if (group[j] < 0) {
          group[j] = groups.length;
          members.push(j);
        }
      }
    }
    if (touches) for (const m of members) anchored[m] = 1;
    groups.push(members);
  }

  const keptMean = new Float64Array(channels);
  const kept = width * height - n;
  for (let p = 0; p < width * height; p++) if (!removed[p]) for (let c = 0; c < channels; c++) keptMean[c] += image[p * channels + c];
  for (let c = 0; c < channels; c++) keptMean[c] = kept > 0 ? keptMean[c] / kept : 0;

  const diag = Float64Array.from(nbr, (list) => list.reduce((s, [, w]) => s + w, 0));
  const apply = (v: Float64Array, r: Float64Array): void => {
    for (let i = 0; i < n; i++) {
      if (!anchored[i]) {
        r[i] = v[i];
        continue;
      }
      let s = diag[i] * v[i];
      for (const [p, w] of nbr[i]) {
        const j = index[p];
        if (j >= 0) s -= w * v[j];
      }
      r[i] = s;
    }
  };
  const tol = options.tolerance ?? 1e-10;
  const maxIt = options.maxIterations ?? 10_000;
  for (let c = 0; c < channels; c++) {
    const b = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (!anchored[i]) continue;
      for (const [p, w] of nbr[i]) if (index[p] < 0) b[i] += w * image[p * channels + c];
    }
    // Conjugate gradients on the anchored unknowns (the others are identity rows with b = 0).
    const x = new Float64Array(n);
    const r = Float64Array.from(b);
    const d = Float64Array.from(r);
    const q = new Float64Array(n);
    let rr = r.reduce((s, v) => s + v * v, 0);
    for (let it = 0; it < maxIt && Math.sqrt(rr) > tol; it++) {
      apply(d, q);
      let dq = 0;
      for (let i = 0; i < n; i++) dq += d[i] * q[i];
      const a = rr / dq;
      let next = 0;
      for (let i = 0; i < n; i++) {
        x[i] += a * d[i];
        r[i] -= a * q[i];
        next += r[i] * r[i];
      }
      const beta = next / rr;
      rr = next;
      for (let i = 0; i < n; i++) d[i] = r[i] + beta * d[i];
    }
    for (let i = 0; i < n; i++) out[unknown[i] * channels + c] = anchored[i] ? x[i] : keptMean[c];
  }
  const sigma = options.noise ?? 0.01;
  if (sigma > 0) {
    const rng = new Rng(options.seed ?? 0);
    for (const p of unknown) for (let c = 0; c < channels; c++) out[p * channels + c] += sigma * rng.normal();
  }
  return out;
}
