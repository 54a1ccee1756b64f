/** Resize and Pad: separable linear resamplings, differentiated by the transposes of their per-axis matrices. */
import { SegGradCamError } from '../../../errors.js';
import { attrFloat, attrInt, attrInts, attrString } from '../builder.js';
import type { NodeProto } from '../proto.js';
import type { GridBox } from '../../contract.js';
import type { GraphAnalysis } from '../analysis.js';
import type { BoxMap, OpGradient, Vjp, VjpContext } from './context.js';
import { phaseTranspose, phaseTransposeConv } from './resample-phases.js';

/** Matrices already built, by their arguments: a decoder's Resizes share a few sizes (38 Resizes, 6 sizes in a 1024² U²-Net). */
const matrices = new Map<string, Float32Array>();

/**
 * Interpolation matrix [outLen, inLen] of one axis of a Resize, as ONNX Runtime computes it
 * (float32 coordinates). Shared between calls with the same arguments: read it, never write it.
 */
export function resizeMatrix(
  inLen: number,
  outLen: number,
  scale: number,
  mode: string,
  ctm: string,
  nearestMode: string,
  cubic: { a: number; excludeOutside: boolean } = { a: -0.75, excludeOutside: false },
): Float32Array {
  const key = [inLen, outLen, scale, mode, ctm, nearestMode, cubic.a, cubic.excludeOutside].join('|');
  const known = matrices.get(key);
  if (known) return known;
  const m = buildResizeMatrix(inLen, outLen, scale, mode, ctm, nearestMode, cubic);
  // A few recent ones (at 1024x2048 one is 8 MB).
  if (matrices.size >= 8) matrices.delete(matrices.keys().next().value as string);
  matrices.set(key, m);
  return m;
}

function buildResizeMatrix(...args: Required<Parameters<typeof resizeMatrix>>): Float32Array {
  const [inLen, outLen, scale, mode, ctm, nearestMode, cubic] = args;
  const f = Math.fround;
  const m = new Float32Array(outLen * inLen);
  const sc = f(scale);
  for (let x = 0; x < outLen; x++) {
    let xo: number;
    switch (ctm) {
      case 'half_pixel':
        xo = f(f(f(x + 0.5) / sc) - 0.5);
        break;
      case 'pytorch_half_pixel':
        xo = outLen > 1 ? f(f(f(x + 0.5) / sc) - 0.5) : 0;
        break;
      case 'align_corners':
        xo = outLen === 1 ? 0 : f((x * (inLen - 1)) / (outLen - 1));
        break;
      case 'asymmetric':
        xo = f(x / sc);
        break;
      case 'tf_half_pixel_for_nn':
        xo = f(f(x + 0.5) / sc);
        break;
      case 'half_pixel_symmetric': {
        // Opset 19: half_pixel about the centre of the input when the output length was rounded.
        const adjustment = outLen / f(sc * inLen);
        const offset = f(f(inLen / 2) * f(1 - adjustment));
        xo = f(f(offset + f(f(x + 0.5) / sc)) - 0.5);
        break;
      }
      default:
        throw new SegGradCamError(`Resize coordinate_transformation_mode '${ctm}' is not supported`, 'model');
    }
    if (mode === 'nearest') {
      let i: number;
      const fl = Math.floor(xo);
      switch (nearestMode) {
        case 'floor':
          i = fl;
          break;
        case 'ceil':
          i = Math.ceil(xo);
          break;
        case 'round_prefer_ceil':
          i = xo === fl + 0.5 ? Math.ceil(xo) : Math.round(xo);
          break;
        case 'simple':
          i = scale < 1 ? Math.ceil(xo) : fl;
          break;
        default:
          i = xo === fl + 0.5 ? fl : Math.round(xo);
      }
      i = Math.min(Math.max(i, 0), inLen - 1);
      m[x * inLen + i] += 1;
    } else if (mode === 'cubic') {
      // Keys' cubic convolution on the 4 neighbours, indices clamped to the edge (or weights outside renormalised away).
      const x0 = Math.floor(xo);
      const r = f(xo - x0);
      const a = cubic.a;
      const w = [r + 1, r, 1 - r, 2 - r].map((d) => {
        const t = Math.abs(d);
        return t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
      });
      const idx = [x0 - 1, x0, x0 + 1, x0 + 2];
      let sum = 1;
      if (cubic.excludeOutside) {
        idx.forEach((i, k) => {
          if (i < 0 || i >= inLen) w[k] = 0;
        });
        sum = w.reduce((p, v) => p + v, 0);
      }
      idx.forEach((i, k) => {
        if (w[k] !== 0) m[x * inLen + Math.min(Math.max(i, 0), inLen - 1)] += w[k] / sum;
      });
    } else {
      const xc = Math.min(Math.max(xo, 0), inLen - 1);
      const x1 = Math.min(Math.floor(xc), inLen - 1);
      const x2 = Math.min(x1 + 1, inLen - 1);
      if (x1 === x2) m[x * inLen + x1] += 1;
      else {
        const w2 = f(xc - x1);
        m[x * inLen + x1] += f(1 - w2);
        m[x * inLen + x2] += w2;
      }
    }
  }
  return m;
}

/** Per-axis linear maps (matrices [out, in]) of a separable resampling. */
type AxisMaps = Map<number, { m: Float32Array; out: number; in: number }>;

/**
 * Applies the transpose of per-axis linear maps to a gradient of shape `outShape`: a MatMul on
 * the last two axes; on an earlier spatial axis (a volume's depth) the gradient is viewed as
 * [−1, out, rest] and multiplied from the left.
 */
function applySeparableTranspose(c: VjpContext, node: NodeProto, g: string, outShape: number[], mats: AxisMaps): string {
  const rank = outShape.length;
  // A 2-D integer-factor upsampling: one depthwise convolution (./resample-phases.ts).
  const conv = phaseTransposeConv(c, g, outShape, mats);
  if (conv) return conv;
  const dims = [...outShape];
  let t = g;
  for (const [axis, { m, out, in: inLen }] of mats) {
    // An integer-factor upsampling: its transpose in O(size) ops (./resample-phases.ts).
    const phased = axis >= 2 ? phaseTranspose(c, t, [...dims], axis, m, out, inLen) : null;
    dims[axis] = inLen;
    if (phased) {
      t = phased;
      continue;
    }
    if (axis < rank - 2 && axis >= 2) {
      const rest = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const mt = new Float32Array(inLen * out);
      for (let o = 0; o < out; o++) for (let i = 0; i < inLen; i++) mt[i * out + o] = m[o * inLen + i];
      const viewed = c.op('Reshape', [t, c.i64([-1, out, rest])]);
      t = c.reshape(c.op('MatMul', [c.b.floats('interp_t', [inLen, out], mt), viewed]), dims);
    } else if (axis === rank - 1) {
      t = c.op('MatMul', [t, c.b.floats('interp', [out, inLen], m)]);
    } else if (axis === rank - 2) {
      const mt = new Float32Array(inLen * out);
      for (let o = 0; o < out; o++) for (let i = 0; i < inLen; i++) mt[i * out + o] = m[o * inLen + i];
      t = c.op('MatMul', [c.b.floats('interp_t', [inLen, out], mt), t]);
    } else throw c.refuse(node, `resampling along axis ${axis} is not supported (only spatial axes)`);
  }
  return t;
}

const resize: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const ys = c.shape(node.output[0]);
  const rank = xs.length;
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic')
    throw c.refuse(node, `mode '${mode}' is not supported (nearest, linear, cubic)`);
  if (attrString(node, 'coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize')
    throw c.refuse(node, "coordinate_transformation_mode 'tf_crop_and_resize' is not supported");
  const cubic = { a: attrFloat(node, 'cubic_coeff_a', -0.75), excludeOutside: attrInt(node, 'exclude_outside', 0) === 1 };
  if (attrInt(node, 'antialias', 0) !== 0) throw c.refuse(node, 'antialias is not supported');
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const given = c.an.numbers(node.input[2]);
  const scales = given && given.length === rank ? given : null;
  const mats: AxisMaps = new Map();
  for (let a = 0; a < rank; a++) {
    const scale = scales ? scales[a] : ys[a] / xs[a];
    if (xs[a] === ys[a] && scale === 1 && ctm !== 'tf_half_pixel_for_nn') continue;
    // ONNX Runtime leaves an unscaled batch or channel axis as it is, whatever the coordinate transformation.
    if (a < 2 && xs[a] === ys[a] && scale === 1) continue;
    const m = resizeMatrix(xs[a], ys[a], scale, mode, ctm, nearestMode, cubic);
    if (a < 2) throw c.refuse(node, 'resizing the batch or channel axis is not supported');
    mats.set(a, { m, out: ys[a], in: xs[a] });
  }
  if (mats.size === 0) return [g];
  return [applySeparableTranspose(c, node, g, ys, mats)];
};

const pad: Vjp = (c, node, [g], wanted) => {
  if (wanted[2]) throw c.refuse(node, 'gradients through the pad value are not supported');
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const rank = xs.length;
  const mode = attrString(node, 'mode', 'constant');
  if (node.input[3]) throw c.refuse(node, 'the axes input is not supported');
  const pads = c.opset >= 11 ? c.an.numbers(node.input[1]) : (attrInts(node, 'pads') ?? null);
  if (!pads || pads.length !== 2 * rank) throw c.refuse(node, 'its pads are not a constant');
  if (pads[0] !== 0 || pads[rank] !== 0) c.batchable = false;
  if (mode === 'constant') {
    let t = g;
    const grow = pads.map((p) => Math.max(-p, 0));
    if (grow.some((p) => p > 0)) t = c.op('Pad', [t, c.i64(grow)], { mode: { s: 'constant' } });
    const axes: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    for (let a = 0; a < rank; a++) {
      const b0 = Math.max(pads[a], 0);
      const e0 = Math.max(pads[rank + a], 0);
      if (b0 === 0 && e0 === 0) continue;
      axes.push(a);
      starts.push(b0);
      ends.push(b0 + xs[a]);
    }
    if (axes.length > 0) t = c.op('Slice', [t, c.i64(starts), c.i64(ends), c.i64(axes)]);
    return [t];
  }
  if (mode !== 'reflect' && mode !== 'edge') throw c.refuse(node, `mode '${mode}' is not supported`);
  const ys = c.shape(node.output[0]);
  const mats: AxisMaps = new Map();
  for (let a = 0; a < rank; a++) {
    if (pads[a] === 0 && pads[rank + a] === 0) continue;
    if (a < 2) throw c.refuse(node, `${mode} padding of the batch or channel axis is not supported`);
    const inLen = xs[a];
    const outLen = ys[a];
    const m = new Float32Array(outLen * inLen);
    for (let j = 0; j < outLen; j++) {
      let i = j - pads[a];
      if (mode === 'edge') i = Math.min(Math.max(i, 0), inLen - 1);
      else {
        while (i < 0 || i >= inLen) i = i < 0 ? -i : 2 * (inLen - 1) - i;
      }
      m[j * inLen + i] += 1;
    }
    mats.set(a, { m, out: outLen, in: inLen });
  }
  return [applySeparableTranspose(c, node, g, ys, mats)];
};

/** A 2-D Resize's output box → the input pixels its interpolation reads (the rows' nonzero columns of each axis's matrix). */
function resizeBox(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const xs = an.shape(node.input[0]);
  const ys = an.shape(node.output[0]);
  if (xs.length !== 4) return 'not a 2-D resize';
  if (xs[0] !== ys[0] || xs[1] !== ys[1]) return 'resizes the batch or channel axis';
  const mode = attrString(node, 'mode', 'nearest');
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  if ((mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') || ctm === 'tf_crop_and_resize' || attrInt(node, 'antialias', 0) !== 0)
    return `mode '${mode}', coordinate transformation '${ctm}'`;
  const cubic = { a: attrFloat(node, 'cubic_coeff_a', -0.75), excludeOutside: attrInt(node, 'exclude_outside', 0) === 1 };
  const given = an.numbers(node.input[2]);
  const scales = given && given.length === 4 ? given : null;
  // Per axis and output row, the first and last input column read.
  const reach = [2, 3].map((a) => {
    const m = resizeMatrix(
      xs[a],
      ys[a],
      scales ? scales[a] : ys[a] / xs[a],
      mode,
      ctm,
      attrString(node, 'nearest_mode', 'round_prefer_floor'),
      cubic,
    );
    const lo = new Int32Array(ys[a]);
    const hi = new Int32Array(ys[a]);
    for (let x = 0; x < ys[a]; x++) {
      lo[x] = xs[a];
      hi[x] = -1;
      for (let j = 0; j < xs[a]; j++)
        if (m[x * xs[a] + j] !== 0) {
          lo[x] = Math.min(lo[x], j);
          hi[x] = j;
        }
    }
    return { lo, hi, len: ys[a] };
  });
  return (b) =>
    reach.map(({ lo, hi, len }, i) => {
      let a = Infinity;
      let e = -Infinity;
      for (let x = Math.max(0, b[i][0]); x < Math.min(len, b[i][1]); x++) {
        a = Math.min(a, lo[x]);
        e = Math.max(e, hi[x] + 1);
      }
      return a < e ? [a, e] : [0, 0];
    }) as GridBox;
}

export const RESAMPLE_OPS: Record<string, OpGradient> = {
  Resize: { inputs: [0], vjp: resize, wholeMapBox: resizeBox },
  Pad: { inputs: [0, 2], vjp: pad },
};
