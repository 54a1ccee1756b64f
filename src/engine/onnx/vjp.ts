/**
 * Vector-Jacobian products of ONNX ops, each written in ONNX ops. A VJP receives the gradient
 * names of the node's outputs (null where no gradient flows) and returns gradient names for
 * the inputs that need one. Shapes are static (from the probe run); the batch axis of every
 * gradient is left free (-1 in Reshape targets) so that K cotangents can be stacked, unless an
 * op mixes the batch axis — then the graph is marked not batchable and uses exact shapes.
 *
 * Choices that matter for ONNX Runtime's speed (see docs/design-notes.md, "ONNX Runtime"): a stride-1 Conv's input
 * gradient is a Conv with the weight flipped spatially and its first two axes swapped (ORT's
 * ConvTranspose is ~2x slower); other Convs use ConvTranspose with an explicit output_padding;
 * ConvTranspose's gradient is a Conv with the same weight; MaxPool recomputes its indices with
 * a second MaxPool and scatters onto zeros.
 */
import { SegGradCamError } from '../../errors.js';
import type { GraphAnalysis } from './analysis.js';
import { attrFloat, attrInt, attrInts, attrString, nodeLabel, type Attr, type GraphBuilder } from './builder.js';
import type { NodeProto } from './proto.js';
import { floatTensor } from './tensor.js';

/** "To the end" for Slice (clamped to the axis by ONNX; exactly representable, unlike 2^63 − 1). */
const INT64_MAX = 2 ** 62;
const INT64_MIN = -(2 ** 62);

type Vjp = (c: VjpContext, node: NodeProto, gOut: Array<string | null>, wanted: boolean[]) => Array<string | null>;

/** Inputs through which a gradient can flow, per op (ops not listed: every input). */
export const DIFFERENTIABLE_INPUTS: Record<string, number[]> = {
  Conv: [0, 1, 2],
  ConvTranspose: [0, 1, 2],
  BatchNormalization: [0, 1, 2, 3, 4],
  Clip: [0, 1, 2],
  Pad: [0, 2],
  Resize: [0],
  Reshape: [0],
  Slice: [0],
  Squeeze: [0],
  Unsqueeze: [0],
  Flatten: [0],
  Dropout: [0],
  Identity: [0],
  Transpose: [0],
  MaxPool: [0],
  AveragePool: [0],
  GlobalAveragePool: [0],
  Shape: [],
  Size: [],
  ConstantOfShape: [],
  Cast: [0],
  ReduceSum: [0],
  ReduceMean: [0],
};

export class VjpContext {
  /** False once an op mixes the batch axis: the graph then takes exactly one cotangent. */
  batchable = true;
  /** The smallest default opset the emitted ops need. */
  minOpset = 1;
  private readonly ints = new Map<string, string>();
  private readonly floats = new Map<number, string>();

  constructor(
    readonly an: GraphAnalysis,
    readonly b: GraphBuilder,
    readonly onPath: Set<string>,
  ) {}

  get opset(): number {
    return this.an.opset;
  }

  /** Shapes of tensors the backward graph adds (the ONNX analysis knows only the model's). */
  readonly addedShapes = new Map<string, number[]>();

  shape(t: string): number[] {
    return this.addedShapes.get(t) ?? this.an.shape(t);
  }

  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.b.op(type, inputs, attrs, `${type}_grad`);
  }

  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `${dims.join(',')}:${values.join(',')}`;
    let n = this.ints.get(key);
    if (!n) {
      n = this.b.ints('c', values, dims);
      this.ints.set(key, n);
    }
    return n;
  }

  f32(value: number): string {
    let n = this.floats.get(value);
    if (!n) {
      n = this.b.scalar('c', value);
      this.floats.set(value, n);
    }
    return n;
  }

  /** Reshape target for a gradient of a tensor of static shape `dims`: the batch axis stays free. */
  batchDims(dims: number[]): number[] {
    if (dims.length > 0 && dims[0] === 1) return [-1, ...dims.slice(1)];
    this.batchable = false;
    return dims;
  }

  reshape(x: string, dims: number[]): string {
    return this.op('Reshape', [x, this.i64(this.batchDims(dims))]);
  }

  reduceSum(x: string, axes: number[], keepdims = 1): string {
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.i64(axes)], { keepdims: { i: keepdims } });
    return this.op('ReduceSum', [x], { axes: { ints: axes }, keepdims: { i: keepdims } });
  }

  /** Sums a gradient of the broadcast shape `outShape` back to an operand's shape. */
  unbroadcast(g: string, outShape: number[], target: number[]): string {
    const r = outShape.length - target.length;
    const axes: number[] = [];
    for (let i = 0; i < outShape.length; i++) {
      if (i < r || (target[i - r] === 1 && outShape[i] !== 1)) axes.push(i);
    }
    if (axes.length === 0) return g;
    if (axes.includes(0) || r > 0) this.batchable = false;
    const s = this.reduceSum(g, axes, 1);
    return r > 0 ? this.op('Reshape', [s, this.i64(target)]) : s;
  }

  isOnPath(t: string | undefined): boolean {
    return !!t && this.onPath.has(t);
  }

  refuse(node: NodeProto, why: string): SegGradCamError {
    return new SegGradCamError(`cannot differentiate op '${node.opType}' (node '${nodeLabel(node)}'): ${why}`, 'model');
  }

  needOpset(v: number) {
    this.minOpset = Math.max(this.minOpset, v);
  }
}

const ones = (n: number) => Array.from({ length: n }, () => 1);
const zeros = (n: number) => Array.from({ length: n }, () => 0);
const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

export interface Window {
  k: number[];
  s: number[];
  d: number[];
  /** [begin…, end…] */
  pads: number[];
}

/** Kernel, strides, dilations and explicit pads of a Conv/Pool node (auto_pad resolved from the probed shapes). */
export function windowOf(c: Pick<VjpContext, 'refuse'>, node: NodeProto, inSp: number[], outSp: number[], kernel?: number[]): Window {
  const n = inSp.length;
  const k = attrInts(node, 'kernel_shape') ?? kernel;
  if (!k) throw c.refuse(node, 'no kernel_shape');
  const s = attrInts(node, 'strides') ?? ones(n);
  const d = attrInts(node, 'dilations') ?? ones(n);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads') ?? zeros(2 * n);
  if (autoPad === 'VALID') pads = zeros(2 * n);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = zeros(2 * n);
    for (let i = 0; i < n; i++) {
      const total = Math.max(0, (outSp[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - inSp[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[n + i] = total - pads[i];
    }
  }
  return { k, s, d, pads };
}

/**
 * A ConvTranspose from a gradient of spatial size `outSp` back to `inSp`, with output_padding
 * (or extra end padding when the forward window overhung the input, as with ceil_mode).
 */
function transposedWindow(w: Window, inSp: number[], outSp: number[]): { pads: number[]; outputPadding: number[] } {
  const n = inSp.length;
  const pads = [...w.pads];
  const outputPadding = zeros(n);
  for (let i = 0; i < n; i++) {
    const natural = (outSp[i] - 1) * w.s[i] + (w.k[i] - 1) * w.d[i] + 1 - w.pads[i] - w.pads[n + i];
    const extra = inSp[i] - natural;
    if (extra >= 0) outputPadding[i] = extra;
    else pads[n + i] += -extra;
  }
  return { pads, outputPadding };
}

/** Conv and ConvTranspose differentiate through their input only. */
function refuseWeightGradients(c: VjpContext, node: NodeProto, wanted: boolean[]) {
  const [, w, bias] = node.input;
  if (wanted[1] || wanted[2] || c.isOnPath(w) || c.isOnPath(bias))
    throw c.refuse(node, 'gradients through its weights or bias are not supported');
}

const conv: Vjp = (c, node, [g], wanted) => {
  refuseWeightGradients(c, node, wanted);
  if (!g || !wanted[0]) return [];
  const [x, w] = node.input;
  const xs = c.shape(x);
  const ys = c.shape(node.output[0]);
  const ws = c.shape(w);
  const n = ws.length - 2;
  const group = attrInt(node, 'group', 1);
  const win = windowOf(c, node, xs.slice(2), ys.slice(2), ws.slice(2));
  const flipPads = [...win.k.map((k, i) => (k - 1) * win.d[i] - win.pads[i]), ...win.k.map((k, i) => (k - 1) * win.d[i] - win.pads[n + i])];
  if (win.s.every((v) => v === 1) && flipPads.every((p) => p >= 0)) {
    const axes = Array.from({ length: n }, (_, i) => i + 2);
    const flipped = c.op('Slice', [w, c.i64(axes.map(() => -1)), c.i64(axes.map(() => INT64_MIN)), c.i64(axes), c.i64(axes.map(() => -1))]);
    let wt: string;
    const [m, cg] = ws;
    if (group === 1) wt = c.op('Transpose', [flipped], { perm: { ints: [1, 0, ...axes] } });
    else {
      const r = c.op('Reshape', [flipped, c.i64([group, m / group, cg, ...ws.slice(2)])]);
      const t = c.op('Transpose', [r], { perm: { ints: [0, 2, 1, ...axes.map((a) => a + 1)] } });
      wt = c.op('Reshape', [t, c.i64([group * cg, m / group, ...ws.slice(2)])]);
    }
    return [
      c.op('Conv', [g, wt], {
        kernel_shape: { ints: win.k },
        strides: { ints: ones(n) },
        dilations: { ints: win.d },
        pads: { ints: flipPads },
        group: { i: group },
      }),
    ];
  }
  const t = transposedWindow(win, xs.slice(2), ys.slice(2));
  return [
    c.op('ConvTranspose', [g, w], {
      kernel_shape: { ints: win.k },
      strides: { ints: win.s },
      dilations: { ints: win.d },
      pads: { ints: t.pads },
      output_padding: { ints: t.outputPadding },
      group: { i: group },
    }),
  ];
};

/**
 * A Conv whose input is a channel Concat read by nothing else, with some of the concat's inputs
 * off the path (a U-Net's skips): each on-path input's gradient is the Conv VJP with the matching
 * slice of the weight, so the skips' channels are never differentiated. Null when the pattern
 * does not apply (the caller then runs the plain Conv and Concat VJPs).
 */
export function convThroughConcat(c: VjpContext, node: NodeProto, g: string | null): Array<[string, string]> | null {
  if (node.opType !== 'Conv' || !g || attrInt(node, 'group', 1) !== 1) return null;
  const [x, w] = node.input;
  const cat = c.an.producer.get(x);
  if (!cat || cat.opType !== 'Concat' || (c.an.consumers.get(x) ?? []).length !== 1) return null;
  const rank = c.shape(x).length;
  let axis = attrInt(cat, 'axis', 0);
  if (axis < 0) axis += rank;
  const on = cat.input.filter((i) => c.isOnPath(i));
  if (axis !== 1 || on.length === 0 || on.length === cat.input.length) return null;
  const ws = c.shape(w);
  const result: Array<[string, string]> = [];
  let offset = 0;
  for (const input of cat.input) {
    const size = c.shape(input)[1];
    if (c.isOnPath(input)) {
      const part = c.op('Slice', [w, c.i64([offset]), c.i64([offset + size]), c.i64([1])]);
      c.addedShapes.set(part, [ws[0], size, ...ws.slice(2)]);
      const [gi] = conv(c, { ...node, input: [input, part] }, [g], [true, false]);
      if (gi) result.push([input, gi]);
    }
    offset += size;
  }
  return result;
}

const convTranspose: Vjp = (c, node, [g], wanted) => {
  refuseWeightGradients(c, node, wanted);
  if (!g || !wanted[0]) return [];
  if (attrInts(node, 'output_shape') || attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') {
    throw c.refuse(node, 'ConvTranspose with output_shape or auto_pad is not supported (export with explicit pads)');
  }
  const [x, w] = node.input;
  const xs = c.shape(x);
  const ys = c.shape(node.output[0]);
  const ws = c.shape(w);
  const n = ws.length - 2;
  // ConvTranspose's window is the gradient Conv's (auto_pad is NOTSET: the pads are explicit).
  const { k, s, d, pads } = windowOf(c, node, xs.slice(2), ys.slice(2), ws.slice(2));
  for (let i = 0; i < n; i++) {
    const back = Math.floor((ys[2 + i] + pads[i] + pads[n + i] - (k[i] - 1) * d[i] - 1) / s[i]) + 1;
    if (back !== xs[2 + i]) throw c.refuse(node, `its gradient Conv would give size ${back} instead of ${xs[2 + i]}`);
  }
  return [
    c.op('Conv', [g, w], {
      kernel_shape: { ints: k },
      strides: { ints: s },
      dilations: { ints: d },
      pads: { ints: pads },
      group: { i: attrInt(node, 'group', 1) },
    }),
  ];
};

const passThrough: Vjp = (_c, _node, [g]) => [g];

const reshapeBack: Vjp = (c, node, [g]) => {
  if (!g) return [];
  if (c.shape(node.output[0])[0] !== 1) c.batchable = false;
  return [c.reshape(g, c.shape(node.input[0]))];
};

const relu: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const y = node.output[0];
  return [c.op('Where', [c.op('Greater', [y, c.f32(0)]), g, c.f32(0)])];
};

const leakyRelu: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const alpha = attrFloat(node, 'alpha', 0.01);
  // For alpha > 0, Y > 0 exactly where X > 0: the output decides, so the pair Conv+LeakyRelu stays fused.
  const t = alpha > 0 ? node.output[0] : node.input[0];
  return [c.op('Where', [c.op('Greater', [t, c.f32(0)]), g, c.op('Mul', [g, c.f32(alpha)])])];
};

const clip: Vjp = (c, node, [g], wanted) => {
  if (wanted[1] || wanted[2]) throw c.refuse(node, 'gradients through its bounds are not supported');
  if (!g) return [];
  const y = node.output[0];
  let lo: string | null;
  let hi: string | null;
  if (c.opset >= 11) {
    lo = node.input[1] || null;
    hi = node.input[2] || null;
  } else {
    const mn = attrFloat(node, 'min', -Infinity);
    const mx = attrFloat(node, 'max', Infinity);
    lo = Number.isFinite(mn) ? c.f32(mn) : null;
    hi = Number.isFinite(mx) ? c.f32(mx) : null;
  }
  // The gradient passes where the output is strictly inside the bounds (decided on Y, which keeps Conv+Clip fused).
  const conds: string[] = [];
  if (lo) conds.push(c.op('Greater', [y, lo]));
  if (hi) conds.push(c.op('Less', [y, hi]));
  if (conds.length === 0) return [g];
  const cond = conds.length === 2 ? c.op('And', conds) : conds[0];
  return [c.op('Where', [cond, g, c.f32(0)])];
};

/** ∂/∂x of y = σ(x), from y: g·y·(1 − y). */
export function sigmoidVjp(c: VjpContext, y: string, g: string): string {
  return c.op('Mul', [g, c.op('Mul', [y, c.op('Sub', [c.f32(1), y])])]);
}

/** ∂/∂x of y = softmax(x) over `axes`, from y: y·(g − Σ g·y). */
export function softmaxVjp(c: VjpContext, y: string, g: string, axes: number[]): string {
  const s = c.reduceSum(c.op('Mul', [g, y]), axes, 1);
  return c.op('Mul', [y, c.op('Sub', [g, s])]);
}

const sigmoid: Vjp = (c, node, [g]) => (g ? [sigmoidVjp(c, node.output[0], g)] : []);

const tanh: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const y = node.output[0];
  return [c.op('Mul', [g, c.op('Sub', [c.f32(1), c.op('Mul', [y, y])])])];
};

const hardSigmoid: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const alpha = attrFloat(node, 'alpha', 0.2);
  const y = node.output[0];
  const inside = c.op('And', [c.op('Greater', [y, c.f32(0)]), c.op('Less', [y, c.f32(1)])]);
  return [c.op('Where', [inside, c.op('Mul', [g, c.f32(alpha)]), c.f32(0)])];
};

const hardSwish: Vjp = (c, node, [g]) => {
  if (!g) return [];
  // y = x·relu6(x + 3)/6: dy/dx = 0 for x < −3, 1 for x > 3, x/3 + 1/2 between (PyTorch's convention).
  const x = node.input[0];
  const mid = c.op('Mul', [g, c.op('Add', [c.op('Mul', [x, c.f32(1 / 3)]), c.f32(0.5)])]);
  return [c.op('Where', [c.op('Less', [x, c.f32(-3)]), c.f32(0), c.op('Where', [c.op('Greater', [x, c.f32(3)]), g, mid])])];
};

/** Axes a Softmax/LogSoftmax normalises over (opset < 13: everything from `axis` on). */
function softmaxAxes(c: VjpContext, node: NodeProto): number[] {
  const rank = c.shape(node.input[0]).length;
  let axis = attrInt(node, 'axis', c.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  const axes = c.opset >= 13 ? [axis] : Array.from({ length: rank - axis }, (_, i) => axis + i);
  if (axes.includes(0)) c.batchable = false;
  return axes;
}

const softmax: Vjp = (c, node, [g]) => (g ? [softmaxVjp(c, node.output[0], g, softmaxAxes(c, node))] : []);

const logSoftmax: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const y = node.output[0];
  const s = c.reduceSum(g, softmaxAxes(c, node), 1);
  return [c.op('Sub', [g, c.op('Mul', [c.op('Exp', [y]), s])])];
};

const batchNorm: Vjp = (c, node, [g], wanted) => {
  if (wanted.slice(1).some(Boolean)) throw c.refuse(node, 'gradients through its scale, bias or statistics are not supported');
  if (attrInt(node, 'training_mode', 0) !== 0) throw c.refuse(node, 'training mode is not supported (export the model in eval mode)');
  if (!g) return [];
  const [x, scale, , , variance] = node.input;
  const rank = c.shape(x).length;
  const ch = c.shape(x)[1];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const factor = c.op('Div', [scale, c.op('Sqrt', [c.op('Add', [variance, c.f32(eps)])])]);
  const shaped = c.op('Reshape', [factor, c.i64([ch, ...ones(rank - 2)])]);
  return [c.op('Mul', [g, shaped])];
};

/** Scatter of pooled gradients onto zeros at the flat indices a second MaxPool gives. */
const maxPool: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const ys = c.shape(node.output[0]);
  const n = xs.length - 2;
  if (attrInt(node, 'storage_order', 0) !== 0) throw c.refuse(node, 'storage_order = 1 is not supported');
  const win = windowOf(c, node, xs.slice(2), ys.slice(2));
  const attrs: Record<string, Attr> = {
    kernel_shape: { ints: win.k },
    strides: { ints: win.s },
    pads: { ints: win.pads },
    dilations: { ints: win.d },
    ceil_mode: { i: attrInt(node, 'ceil_mode', 0) },
  };
  const [, indices] = c.b.node('MaxPool', [x], attrs, 2, 'MaxPool_indices');
  // Indices are flat over N·C·H·W; with N = 1 each row of [K, C·H·W] is one stacked cotangent.
  const single = xs[0] === 1;
  if (!single) c.batchable = false;
  const batchOf = single ? 1 : xs[0];
  const inSize = single ? prod(xs.slice(1)) : prod(xs);
  const overlap = win.k.some((k, i) => (k - 1) * win.d[i] + 1 > win.s[i]);
  const scatter = (gPart: string, iPart: string, perImage: number, reduce: boolean): string => {
    const count = perImage * batchOf;
    const gFlat = c.op('Reshape', [gPart, c.i64(single ? [-1, count] : [1, count])]);
    const iFlat = c.op('Reshape', [iPart, c.i64([1, count])]);
    const gShape = c.op('Shape', [gFlat]);
    const rows = c.op('Slice', [gShape, c.i64([0]), c.i64([1]), c.i64([0])]);
    const zerosShape = c.op('Concat', [rows, c.i64([inSize])], { axis: { i: 0 } });
    const zerosT = c.op('ConstantOfShape', [zerosShape], { value: { t: floatTensor('', [1], [0]) } });
    const iExp = c.op('Expand', [iFlat, gShape]);
    const scatterAttrs: Record<string, Attr> = { axis: { i: 1 } };
    if (reduce) {
      scatterAttrs.reduction = { s: 'add' };
      c.needOpset(16);
    }
    return c.op('ScatterElements', [zerosT, iExp, gFlat], scatterAttrs);
  };
  let flat: string;
  if (!overlap) flat = scatter(g, indices, prod(ys.slice(1)), false);
  else if (c.opset >= 16) flat = scatter(g, indices, prod(ys.slice(1)), true);
  else {
    // Opset < 16 has no ScatterElements reduction: split the output positions into groups whose
    // windows do not overlap (every m-th position per axis), scatter each, and add.
    const m = win.k.map((k, i) => Math.ceil(((k - 1) * win.d[i] + 1) / win.s[i]));
    const axes = Array.from({ length: n }, (_, i) => i + 2);
    const parts: string[] = [];
    const offsets: number[][] = [[]];
    for (let i = 0; i < n; i++) {
      const next: number[][] = [];
      for (const o of offsets) for (let a = 0; a < m[i]; a++) next.push([...o, a]);
      offsets.splice(0, offsets.length, ...next);
    }
    for (const off of offsets) {
      const sizes = off.map((a, i) => Math.max(0, Math.ceil((ys[2 + i] - a) / m[i])));
      if (sizes.some((v) => v === 0)) continue;
      const sl = (t: string) => c.op('Slice', [t, c.i64(off), c.i64(off.map(() => INT64_MAX)), c.i64(axes), c.i64(m)]);
      parts.push(scatter(sl(g), sl(indices), ys[1] * prod(sizes), false));
    }
    flat = parts.length === 1 ? parts[0] : c.op('Sum', parts);
  }
  return [c.reshape(flat, xs)];
};

/** Per-axis divisor of an AveragePool window at each output position (ONNX Runtime's rule). */
function poolCounts(inLen: number, outLen: number, k: number, s: number, pb: number, pe: number, includePad: boolean): number[] {
  const out: number[] = [];
  for (let o = 0; o < outLen; o++) {
    let start = o * s - pb;
    let end = Math.min(start + k, inLen + pe);
    const padded = end - start;
    start = Math.max(start, 0);
    end = Math.min(end, inLen);
    out.push(includePad ? padded : end - start);
  }
  return out;
}

const averagePool: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const ys = c.shape(node.output[0]);
  const n = xs.length - 2;
  if (attrInts(node, 'dilations')?.some((v) => v !== 1)) throw c.refuse(node, 'dilated AveragePool is not supported');
  const win = windowOf(c, node, xs.slice(2), ys.slice(2));
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const counts = Array.from({ length: n }, (_, i) =>
    poolCounts(xs[2 + i], ys[2 + i], win.k[i], win.s[i], win.pads[i], win.pads[n + i], includePad),
  );
  const outSp = ys.slice(2);
  const inv = new Float32Array(prod(outSp));
  for (let idx = 0; idx < inv.length; idx++) {
    let rem = idx;
    let cnt = 1;
    for (let i = n - 1; i >= 0; i--) {
      cnt *= counts[i][rem % outSp[i]];
      rem = Math.floor(rem / outSp[i]);
    }
    inv[idx] = 1 / cnt;
  }
  const scaled = c.op('Mul', [g, c.b.floats('avgpool_inv_count', [1, 1, ...outSp], inv)]);
  const ch = xs[1];
  const kernel = c.b.floats('avgpool_ones', [ch, 1, ...win.k], new Float32Array(ch * prod(win.k)).fill(1));
  const t = transposedWindow(win, xs.slice(2), outSp);
  return [
    c.op('ConvTranspose', [scaled, kernel], {
      kernel_shape: { ints: win.k },
      strides: { ints: win.s },
      pads: { ints: t.pads },
      output_padding: { ints: t.outputPadding },
      group: { i: ch },
    }),
  ];
};

const globalAveragePool: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const xs = c.shape(node.input[0]);
  const area = prod(xs.slice(2));
  return [c.op('Expand', [c.op('Mul', [g, c.f32(1 / area)]), c.i64(xs)])];
};

const concat: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const rank = c.shape(node.output[0]).length;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  if (axis === 0) c.batchable = false;
  let offset = 0;
  return node.input.map((inp, i) => {
    const size = c.shape(inp)[axis];
    const start = offset;
    offset += size;
    if (!wanted[i]) return null;
    return c.op('Slice', [g, c.i64([start]), c.i64([start + size]), c.i64([axis])]);
  });
};

/** Add, Sub and Sum (any number of operands): the gradient, negated for Sub's second, summed back to each operand's shape. */
const addSub =
  (sign: number): Vjp =>
  (c, node, [g], wanted) => {
    if (!g) return [];
    const ys = c.shape(node.output[0]);
    return node.input.map((inp, i) => {
      if (!wanted[i]) return null;
      const gi = sign < 0 && i === 1 ? c.op('Neg', [g]) : g;
      return c.unbroadcast(gi, ys, c.shape(inp));
    });
  };

const mul: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const ys = c.shape(node.output[0]);
  const [a, b] = node.input;
  return [
    wanted[0] ? c.unbroadcast(c.op('Mul', [g, b]), ys, c.shape(a)) : null,
    wanted[1] ? c.unbroadcast(c.op('Mul', [g, a]), ys, c.shape(b)) : null,
  ];
};

const div: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const ys = c.shape(node.output[0]);
  const [a, b] = node.input;
  const y = node.output[0];
  return [
    wanted[0] ? c.unbroadcast(c.op('Div', [g, b]), ys, c.shape(a)) : null,
    wanted[1] ? c.unbroadcast(c.op('Neg', [c.op('Div', [c.op('Mul', [g, y]), b])]), ys, c.shape(b)) : null,
  ];
};

const transpose: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const rank = c.shape(node.input[0]).length;
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm[0] !== 0) c.batchable = false;
  const inv = zeros(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.op('Transpose', [g], { perm: { ints: inv } })];
};

const gemm: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const [a, b, cc] = node.input;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const out: Array<string | null> = [null, null, null];
  if (wanted[0]) {
    out[0] =
      tA === 0
        ? c.op('Gemm', [g, b], { alpha: { f: alpha }, transB: { i: tB ? 0 : 1 } })
        : c.op('Gemm', [b, g], { alpha: { f: alpha }, transA: { i: tB }, transB: { i: 1 } });
  }
  if (wanted[1]) {
    c.batchable = false;
    out[1] =
      tB === 0
        ? c.op('Gemm', [a, g], { alpha: { f: alpha }, transA: { i: tA ? 0 : 1 } })
        : c.op('Gemm', [g, a], { alpha: { f: alpha }, transA: { i: 1 }, transB: { i: tA } });
  }
  if (wanted[2] && cc) {
    const scaled = beta === 1 ? g : c.op('Mul', [g, c.f32(beta)]);
    out[2] = c.unbroadcast(scaled, c.shape(node.output[0]), c.shape(cc));
  }
  return out;
};

const matMul: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const [a, b] = node.input;
  const as = c.shape(a);
  const bs = c.shape(b);
  if (as.length < 2 || bs.length < 2) throw c.refuse(node, 'MatMul with a 1-D operand on the gradient path is not supported');
  const ys = c.shape(node.output[0]);
  const swapLast = (t: string, rank: number) =>
    c.op('Transpose', [t], { perm: { ints: [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2] } });
  const bcast = (operand: number[]) => [...ys.slice(0, ys.length - 2), ...operand.slice(-2)];
  return [
    wanted[0] ? c.unbroadcast(c.op('MatMul', [g, swapLast(b, bs.length)]), bcast(as), as) : null,
    wanted[1] ? ((c.batchable = false), c.unbroadcast(c.op('MatMul', [swapLast(a, as.length), g]), bcast(bs), bs)) : null,
  ];
};

/** Interpolation matrix [outLen, inLen] of one axis of a Resize, as ONNX Runtime computes it (float32 coordinates). */
export function resizeMatrix(inLen: number, outLen: number, scale: number, mode: string, ctm: string, nearestMode: string): Float32Array {
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

/** Applies the transpose of per-axis linear maps to a gradient, on the last two axes. */
function applySeparableTranspose(c: VjpContext, node: NodeProto, g: string, rank: number, mats: AxisMaps): string {
  let t = g;
  for (const [axis, { m, out, in: inLen }] of mats) {
    if (axis === rank - 1) {
      t = c.op('MatMul', [t, c.b.floats('interp', [out, inLen], m)]);
    } else if (axis === rank - 2) {
      const mt = new Float32Array(inLen * out);
      for (let o = 0; o < out; o++) for (let i = 0; i < inLen; i++) mt[i * out + o] = m[o * inLen + i];
      t = c.op('MatMul', [c.b.floats('interp_t', [inLen, out], mt), t]);
    } else throw c.refuse(node, `resampling along axis ${axis} is not supported (only the last two axes)`);
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
  if (mode !== 'nearest' && mode !== 'linear') throw c.refuse(node, `mode '${mode}' is not supported (nearest, linear)`);
  if (attrInt(node, 'antialias', 0) !== 0) throw c.refuse(node, 'antialias is not supported');
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const given = c.an.numbers(node.input[2]);
  const scales = given && given.length === rank ? given : null;
  const mats: AxisMaps = new Map();
  for (let a = 0; a < rank; a++) {
    const scale = scales ? scales[a] : ys[a] / xs[a];
    if (xs[a] === ys[a] && scale === 1 && ctm !== 'tf_half_pixel_for_nn') continue;
    if (a < 2) throw c.refuse(node, 'resizing the batch or channel axis is not supported');
    mats.set(a, { m: resizeMatrix(xs[a], ys[a], scale, mode, ctm, nearestMode), out: ys[a], in: xs[a] });
  }
  if (mats.size === 0) return [g];
  return [applySeparableTranspose(c, node, g, rank, mats)];
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
  return [applySeparableTranspose(c, node, g, rank, mats)];
};

const slice: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const rank = xs.length;
  const starts = c.an.numbers(node.input[1]);
  const ends = c.an.numbers(node.input[2]);
  const axesIn = node.input[3] ? c.an.numbers(node.input[3]) : Array.from({ length: starts?.length ?? 0 }, (_, i) => i);
  const steps = node.input[4] ? c.an.numbers(node.input[4]) : null;
  if (!starts || !ends || !axesIn) throw c.refuse(node, 'its starts, ends and axes must be constants');
  if (steps && steps.some((s) => s !== 1)) throw c.refuse(node, 'steps other than 1 are not supported');
  const pads = zeros(2 * rank);
  axesIn.forEach((axRaw, i) => {
    const ax = axRaw < 0 ? axRaw + rank : axRaw;
    const dim = xs[ax];
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const s = clamp(starts[i]);
    const e = Math.max(clamp(ends[i]), s);
    pads[ax] = s;
    pads[rank + ax] = dim - e;
  });
  if (pads[0] !== 0 || pads[rank] !== 0) c.batchable = false;
  if (pads.every((p) => p === 0)) return [g];
  return [c.op('Pad', [g, c.i64(pads)], { mode: { s: 'constant' } })];
};

/** ReduceSum / ReduceMean: the gradient spread back over the reduced axes. */
const reduce =
  (mean: boolean): Vjp =>
  (c, node, [g]) => {
    if (!g) return [];
    const xs = c.shape(node.input[0]);
    const rank = xs.length;
    const axesFromInput = node.opType === 'ReduceSum' ? c.opset >= 13 : c.opset >= 18;
    let axes = axesFromInput ? (node.input[1] ? c.an.numbers(node.input[1]) : null) : (attrInts(node, 'axes') ?? null);
    if (axesFromInput && node.input[1] && !axes) throw c.refuse(node, 'its axes are not a constant');
    if (!axes || axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return [g];
      axes = Array.from({ length: rank }, (_, i) => i);
    }
    const norm = axes.map((a) => (a < 0 ? a + rank : a));
    if (norm.includes(0) && xs[0] !== 1) c.batchable = false;
    const kept = xs.map((d, i) => (norm.includes(i) ? 1 : d));
    let t = attrInt(node, 'keepdims', 1) === 1 ? g : c.reshape(g, kept);
    if (mean) t = c.op('Mul', [t, c.f32(1 / norm.reduce((p, a) => p * xs[a], 1))]);
    return [c.op('Expand', [t, c.i64(xs)])];
  };

const cast: Vjp = (c, node, [g]) => {
  if (!g) return [];
  if (!c.an.isFloat(node.input[0])) return [null];
  return [g];
};

export const VJPS: Record<string, Vjp> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  Relu: relu,
  LeakyRelu: leakyRelu,
  Clip: clip,
  Sigmoid: sigmoid,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  Tanh: tanh,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  BatchNormalization: batchNorm,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
  Concat: concat,
  Add: addSub(1),
  Sub: addSub(-1),
  Sum: addSub(1),
  Mul: mul,
  Div: div,
  Resize: resize,
  Pad: pad,
  Slice: slice,
  Identity: passThrough,
  Dropout: passThrough,
  Cast: cast,
  ReduceSum: reduce(false),
  ReduceMean: reduce(true),
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transpose,
  Gemm: gemm,
  MatMul: matMul,
};
