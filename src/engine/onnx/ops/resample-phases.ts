/**
 * The transpose of an integer-factor upsampling along one axis, in O(size) ops instead of a dense
 * matrix product.
 *
 * An upsampling by an integer factor s (Resize nearest or linear with half_pixel, asymmetric, …
 * coordinates) reads, for output x = s·i + r, the inputs i + d for a few offsets d with weights that
 * depend only on the phase r, the indices clamped to the edge: M[x, j] = Σ_d W[r, d]·[clamp(i + d) = j].
 * Its transpose is then
 *
 *   ∂S/∂in[j] = Σ_d Σ_i [clamp(i + d) = j] · h_d[i],   h_d[i] = Σ_r W[r, d] · g[s·i + r]
 *
 * — the gradient viewed as [in, s] along the axis times W [s, T] (T offsets), each offset's
 * column shifted into place, summed, and the parts that fell off the edges added to the first
 * and last element. The dense product it replaces (M as a [out, in] matrix, `applySeparableTranspose`)
 * cost out·in multiply-adds per line: at 1024x1024 the decoder's 2x upsamplings took as long as
 * the backward convolutions.
 *
 * W is read off the interpolation matrix the dense path would use (`resizeMatrix`, ONNX Runtime's
 * own float32 coordinates), and the whole matrix is rebuilt from W and compared with it: any axis
 * where they differ (align_corners, cubic with exclude_outside, a factor whose float32
 * coordinates drift with x) keeps the dense product.
 */
import type { VjpContext } from './context.js';

type PhaseFilter = { s: number; dmin: number; taps: number; w: Float32Array } | null;

/** phaseFilter's answers by matrix (resizeMatrix shares its matrices). */
const filters = new WeakMap<Float32Array, PhaseFilter>();

/** Phase weights W [s, T] over offsets dmin…dmin + T − 1, or null when M is not an edge-clamped s-phase filter. */
export function phaseFilter(m: Float32Array, out: number, inLen: number): PhaseFilter {
  if (m.length !== out * inLen) return findPhaseFilter(m, out, inLen);
  const known = filters.get(m);
  if (known !== undefined) return known;
  const f = findPhaseFilter(m, out, inLen);
  filters.set(m, f);
  return f;
}

function findPhaseFilter(m: Float32Array, out: number, inLen: number): PhaseFilter {
  if (out % inLen !== 0 || inLen < 3) return null;
  const s = out / inLen;
  if (s < 2) return null;
  const i0 = Math.floor(inLen / 2);
  const entries: Array<[number, number, number]> = [];
  let dmin = Infinity;
  let dmax = -Infinity;
  for (let r = 0; r < s; r++) {
    const row = (s * i0 + r) * inLen;
    for (let j = 0; j < inLen; j++) {
      const v = m[row + j];
      if (v === 0) continue;
      const d = j - i0;
      entries.push([r, d, v]);
      dmin = Math.min(dmin, d);
      dmax = Math.max(dmax, d);
    }
  }
  // Offset 0 always within the range, so that every input index has its place in the line (phaseTranspose).
  dmin = Math.min(dmin, 0);
  dmax = Math.max(dmax, 0);
  if (entries.length === 0 || dmax - dmin > 4 || -dmin >= i0 || dmax >= inLen - i0 - 1) return null;
  const taps = dmax - dmin + 1;
  const w = new Float32Array(s * taps);
  for (const [r, d, v] of entries) w[r * taps + d - dmin] = v;
  // The matrix W gives, with indices clamped to the edge, must be M itself.
  const rebuilt = new Float64Array(inLen);
  for (let x = 0; x < out; x++) {
    const i = Math.floor(x / s);
    const r = x - i * s;
    rebuilt.fill(0);
    for (let t = 0; t < taps; t++) rebuilt[Math.min(Math.max(i + dmin + t, 0), inLen - 1)] += w[r * taps + t];
    for (let j = 0; j < inLen; j++) {
      const v = m[x * inLen + j];
      if (Math.abs(rebuilt[j] - v) > 1e-6 * Math.max(1, Math.abs(v))) return null;
    }
  }
  return { s, dmin, taps, w };
}

/**
 * Mᵀ along `axis` of a gradient of static shape `dims` (batch axis free), M [out, in] an
 * edge-clamped s-phase filter (see phaseFilter); null when M is not one (the caller keeps the
 * dense product).
 */
export function phaseTranspose(
  c: VjpContext,
  g: string,
  dims: number[],
  axis: number,
  m: Float32Array,
  out: number,
  inLen: number,
): string | null {
  const f = phaseFilter(m, out, inLen);
  if (!f) return null;
  const { s, dmin, taps, w } = f;
  const last = axis === dims.length - 1;
  const pre = dims.slice(0, axis);
  const rest = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const rank = pre.length + (last ? 2 : 3);
  const inAxis = pre.length;
  const tapAxis = inAxis + 1;
  // Each offset's column h_d: on the last axis one [rows, s] · W [s, T] product (a single 2-D
  // GEMM: a batched one with thousands of tiny batches was slower than the dense matrix it
  // replaces); on another axis a weighted sum of the s phase slices (contiguous there).
  const cols: Array<string | null> = [];
  if (last) {
    const h = c.reshape(c.op('MatMul', [c.op('Reshape', [g, c.i64([-1, s])]), c.b.floats('phase_w', [s, taps], w)]), [...pre, inLen, taps]);
    for (let t = 0; t < taps; t++) cols.push(taps === 1 ? h : c.op('Slice', [h, c.i64([t]), c.i64([t + 1]), c.i64([tapAxis])]));
  } else {
    const x = c.reshape(g, [...pre, inLen, s, rest]);
    const phases: string[] = [];
    for (let r = 0; r < s; r++) phases.push(c.op('Slice', [x, c.i64([r]), c.i64([r + 1]), c.i64([tapAxis])]));
    for (let t = 0; t < taps; t++) {
      const terms: string[] = [];
      for (let r = 0; r < s; r++) {
        const v = w[r * taps + t];
        if (v !== 0) terms.push(v === 1 ? phases[r] : c.op('Mul', [phases[r], c.f32(v)]));
      }
      cols.push(terms.length === 0 ? null : terms.length === 1 ? terms[0] : c.op('Sum', terms));
    }
  }
  // Offset t's column at positions t … t + in − 1 of a line of in + T − 1 (index j − dmin).
  const shifted: string[] = [];
  for (let t = 0; t < taps; t++) {
    const col = cols[t];
    if (!col) continue;
    if (taps === 1) {
      shifted.push(col);
      continue;
    }
    const pads = new Array<number>(2 * rank).fill(0);
    pads[inAxis] = t;
    pads[rank + inAxis] = taps - 1 - t;
    shifted.push(pad(c, col, pads));
  }
  const line = shifted.length === 1 ? shifted[0] : c.op('Sum', shifted);
  const folded = foldEdges(c, line, inAxis, inLen, dmin, taps);
  const next = [...dims];
  next[axis] = inLen;
  return c.reshape(folded, next);
}

/**
 * A line of in + T − 1 entries along `axis` (index j − dmin) folded into in: what fell before the
 * first and after the last element (the indices the forward clamped) is added to them.
 */
function foldEdges(c: VjpContext, line: string, axis: number, inLen: number, dmin: number, taps: number): string {
  if (taps === 1) return line;
  const slice = (a: number, b: number) => c.op('Slice', [line, c.i64([a]), c.i64([b]), c.i64([axis])]);
  const lo = -dmin;
  const first = lo > 0 ? c.reduceSum(slice(0, lo + 1), [axis], 1) : slice(lo, lo + 1);
  const middle = slice(lo + 1, lo + inLen - 1);
  const hi = taps - 1 + dmin;
  const lastEl = hi > 0 ? c.reduceSum(slice(lo + inLen - 1, inLen + taps - 1), [axis], 1) : slice(lo + inLen - 1, lo + inLen);
  return c.op('Concat', [first, middle, lastEl], { axis: { i: axis } });
}

/**
 * Mᵀ of a 2-D resampling ([N, C, H, W] gradient of static C, H, W) whose scaled axes are all
 * edge-clamped s-phase filters, as one depthwise convolution and the edge folds; null when some
 * axis is not one. Along an axis, the line of in + T − 1 entries (index e − dmin) is
 *
 *   line[e′] = Σ_κ K[κ] · g[s·e′ + κ − s(T − 1)],   K[r + s(dmax − d)] = W[r, d],
 *
 * a correlation with stride s, a kernel of s·T taps and s(T − 1) zeros of padding on both sides;
 * the two axes' kernels multiply (the resampling is separable). At 1024² its first run took a
 * third of the phase-slice graph's (one kernel, no Pad or Sum of whole maps).
 */
export function phaseTransposeConv(
  c: VjpContext,
  g: string,
  dims: number[],
  mats: Map<number, { m: Float32Array; out: number; in: number }>,
): string | null {
  if (dims.length !== 4 || [...mats.keys()].some((a) => a !== 2 && a !== 3)) return null;
  const axes = [2, 3].map((a) => {
    const given = mats.get(a);
    if (!given) return { s: 1, dmin: 0, taps: 1, w: Float32Array.of(1), inLen: dims[a] };
    const f = phaseFilter(given.m, given.out, given.in);
    return f ? { ...f, inLen: given.in } : null;
  });
  if (axes.some((f) => !f)) return null;
  const [fy, fx] = axes as Array<{ s: number; dmin: number; taps: number; w: Float32Array; inLen: number }>;
  const kernel = (f: typeof fy) => {
    const k = new Float32Array(f.s * f.taps);
    const dmax = f.dmin + f.taps - 1;
    for (let r = 0; r < f.s; r++) for (let t = 0; t < f.taps; t++) k[r + f.s * (dmax - (f.dmin + t))] = f.w[r * f.taps + t];
    return k;
  };
  const [ky, kx] = [kernel(fy), kernel(fx)];
  const channels = dims[1];
  const w = new Float32Array(channels * ky.length * kx.length);
  for (let ch = 0; ch < channels; ch++)
    for (let i = 0; i < ky.length; i++) for (let j = 0; j < kx.length; j++) w[(ch * ky.length + i) * kx.length + j] = ky[i] * kx[j];
  const [py, px] = [fy.s * (fy.taps - 1), fx.s * (fx.taps - 1)];
  const line = c.op('Conv', [g, c.b.floats('phase_kernel', [channels, 1, ky.length, kx.length], w)], {
    group: { i: channels },
    kernel_shape: { ints: [ky.length, kx.length] },
    strides: { ints: [fy.s, fx.s] },
    pads: { ints: [py, px, py, px] },
  });
  return foldEdges(c, foldEdges(c, line, 2, fy.inLen, fy.dmin, fy.taps), 3, fx.inLen, fx.dmin, fx.taps);
}

function pad(c: VjpContext, x: string, pads: number[]): string {
  if (c.opset >= 11) return c.op('Pad', [x, c.i64(pads)], { mode: { s: 'constant' } });
  return c.op('Pad', [x], { mode: { s: 'constant' }, pads: { ints: pads } });
}
