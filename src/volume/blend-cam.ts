/**
 * The CAM of several patches on the volume: each patch's map on the layer grid brought to its voxels
 * (nearest: a layer cell covers patch/layer voxels per axis), blended with the Gaussian importance
 * weights w of the sliding window,
 *
 *   CAM[v] = ReLU(Σ_p w(v − s_p) · map_p[cell(v − s_p)] / Σ_p w(v − s_p)),
 *
 * the sums over the given patches only (float64, in their order), 0 where none of them reaches.
 *
 * The sums are kept on the patches' bounding box only (`extent`) and the result is placed into the
 * volume-sized CAM once: outside the box every voxel is 0, inside it the same sums in the same order
 * as over the whole volume, so the CAM is bit-identical to a whole-volume blend. One patch needs no
 * sums at all: (w · m) / w, as the sums give it.
 */
import type { Dims3 } from './regions.js';

export interface BlendedCam {
  /** [D, H, W]. */
  cam: Float32Array;
  /** The box the patches cover (start, size [d, h, w]): `cam` is 0 outside it. */
  extent: { start: Dims3; size: Dims3 };
}

/**
 * Blends per-patch maps on the layer grid `layerDims` (one Float64Array of d·h·w cells per patch, in
 * the order of `starts`) onto a `dims` volume; `weights` is the patch's importance map ([pd, ph, pw]).
 */
export function blendPatchMaps(
  maps: ArrayLike<number>[],
  starts: Dims3[],
  layerDims: Dims3,
  patch: Dims3,
  weights: Float32Array,
  dims: Dims3,
): BlendedCam {
  const [, lh, lw] = layerDims;
  const f = [0, 1, 2].map((a) => patch[a] / layerDims[a]);
  // The layer cell of each patch voxel, per axis.
  const cellD = Int32Array.from({ length: patch[0] }, (_, d) => Math.floor(d / f[0]) * lh * lw);
  const cellH = Int32Array.from({ length: patch[1] }, (_, h) => Math.floor(h / f[1]) * lw);
  const cellW = Int32Array.from({ length: patch[2] }, (_, w) => Math.floor(w / f[2]));
  const lo: Dims3 = [Infinity, Infinity, Infinity];
  const hi: Dims3 = [-Infinity, -Infinity, -Infinity];
  for (const s of starts)
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], s[a]);
      hi[a] = Math.max(hi[a], s[a] + patch[a]);
    }
  const size: Dims3 = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
  const cam = new Float32Array(dims[0] * dims[1] * dims[2]);
  if (starts.length === 1) {
    // num = 0 + w·m and den = 0 + w: the quotient of the sums, without them.
    const [s, map] = [starts[0], maps[0]];
    let q = 0;
    for (let d = 0; d < patch[0]; d++)
      for (let h = 0; h < patch[1]; h++) {
        const row = ((s[0] + d) * dims[1] + s[1] + h) * dims[2] + s[2];
        const cdh = cellD[d] + cellH[h];
        for (let w = 0; w < patch[2]; w++, q++) {
          const wq: number = weights[q];
          if (wq > 0) cam[row + w] = Math.max((wq * map[cdh + cellW[w]]) / wq, 0);
        }
      }
    return { cam, extent: { start: lo, size } };
  }
  const E = size[0] * size[1] * size[2];
  const num = new Float64Array(E);
  const den = new Float64Array(E);
  for (const [i, s] of starts.entries()) {
    const map = maps[i];
    let q = 0;
    for (let d = 0; d < patch[0]; d++)
      for (let h = 0; h < patch[1]; h++) {
        const row = ((s[0] - lo[0] + d) * size[1] + s[1] - lo[1] + h) * size[2] + s[2] - lo[2];
        const cdh = cellD[d] + cellH[h];
        for (let w = 0; w < patch[2]; w++, q++) {
          num[row + w] += weights[q] * map[cdh + cellW[w]];
          den[row + w] += weights[q];
        }
      }
  }
  let e = 0;
  for (let d = 0; d < size[0]; d++)
    for (let h = 0; h < size[1]; h++) {
      const row = ((lo[0] + d) * dims[1] + lo[1] + h) * dims[2] + lo[2];
      for (let w = 0; w < size[2]; w++, e++) if (den[e] > 0) cam[row + w] = Math.max(num[e] / den[e], 0);
    }
  return { cam, extent: { start: lo, size } };
}
