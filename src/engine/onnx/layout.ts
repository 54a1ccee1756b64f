/**
 * Layout at the boundary. ONNX models (as PyTorch exports them) are NCHW; the project's
 * adapters, the Explainer and the methods work on NHWC ([1, h, w, c] LayerInfo shapes and
 * activation tensors, [H, W, C] objective weights). Conversions are plain loops on
 * Float32Arrays, done once per tensor that crosses the boundary.
 */

/** [n, h, w, c] → [n, c, h, w]. */
export function nhwcToNchw(
  src: ArrayLike<number>,
  n: number,
  h: number,
  w: number,
  c: number,
  out = new Float32Array(n * c * h * w),
): Float32Array {
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const o = b * hw * c;
    for (let p = 0; p < hw; p++) {
      const s = o + p * c;
      for (let k = 0; k < c; k++) out[o + k * hw + p] = src[s + k];
    }
  }
  return out;
}

/** [n, c, h, w] → [n, h, w, c]. */
export function nchwToNhwc(
  src: ArrayLike<number>,
  n: number,
  c: number,
  h: number,
  w: number,
  out = new Float32Array(n * c * h * w),
): Float32Array {
  const hw = h * w;
  // One channel: the same order.
  if (c === 1) {
    for (let i = 0; i < n * hw; i++) out[i] = src[i];
    return out;
  }
  for (let b = 0; b < n; b++) {
    const so = b * hw * c;
    for (let k = 0; k < c; k++) {
      const s = so + k * hw;
      for (let p = 0; p < hw; p++) out[so + p * c + k] = src[s + p];
    }
  }
  return out;
}

/** An NCHW shape as the project's NHWC shape ([n, c, h, w] → [n, h, w, c]); other ranks unchanged. */
export function toNhwcShape(dims: readonly number[]): number[] {
  return dims.length === 4 ? [dims[0], dims[2], dims[3], dims[1]] : [...dims];
}

/** `maps` stacked ph × pw maps placed at (oy, ox) in h × w maps of zeros. */
export function embedNchw(
  part: Float32Array,
  maps: number,
  ph: number,
  pw: number,
  h: number,
  w: number,
  oy: number,
  ox: number,
): Float32Array {
  const out = new Float32Array(maps * h * w);
  for (let m = 0; m < maps; m++) {
    for (let y = 0; y < ph; y++) out.set(part.subarray((m * ph + y) * pw, (m * ph + y + 1) * pw), m * h * w + (oy + y) * w + ox);
  }
  return out;
}
