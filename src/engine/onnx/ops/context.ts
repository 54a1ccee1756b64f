/**
 * What every op's gradient record builds on: the record type itself (OpGradient), the context a
 * VJP writes its ONNX ops through (VjpContext), and helpers several families share (a Conv/Pool
 * node's window, the transposed window of its gradient).
 *
 * A VJP receives the gradient names of the node's outputs (null where no gradient flows) and
 * returns gradient names for the inputs that need one. Shapes are static (from the probe run);
 * the batch axis of every gradient is left free (-1 in Reshape targets) so that K cotangents can
 * be stacked, unless an op mixes the batch axis — then the graph is marked not batchable and uses
 * exact shapes.
 */
import { SegGradCamError } from '../../../errors.js';
import type { GridBox } from '../../contract.js';
import type { GraphAnalysis } from '../analysis.js';
import { attrInts, attrString, nodeLabel, type Attr, type GraphBuilder } from '../builder.js';
import type { NodeProto } from '../proto.js';

/** "To the end" for Slice (clamped to the axis by ONNX; exactly representable, unlike 2^63 − 1). */
export const INT64_MAX = 2 ** 62;
export const INT64_MIN = -(2 ** 62);

export type Vjp = (c: VjpContext, node: NodeProto, gOut: Array<string | null>, wanted: boolean[]) => Array<string | null>;

/** How a node's output box (rows, columns at its scale) maps to its on-path input's (see ../window.ts). */
export type BoxMap = (out: GridBox) => GridBox;

/**
 * Everything the project knows about one op type's gradient (the registry, ./index.ts, holds one
 * per op type; the gradient builder and the window planner read nothing else).
 */
export interface OpGradient {
  /** Input positions through which a gradient can flow (absent: every input; empty: none). */
  inputs?: number[];
  /** The vector-Jacobian product, written in ONNX ops (absent only for ops no gradient flows through). */
  vjp?: Vjp;
  /**
   * A VJP that also skips the producer of the node's first input (a Conv reading a channel Concat
   * of which some inputs are off the path): the gradients of the producer's on-path inputs, or
   * null when the pattern does not apply (the plain VJPs then run).
   */
  through?: (c: VjpContext, node: NodeProto, g: string | null) => Array<[string, string]> | null;
  /**
   * Windowed backward passes (../window.ts): how the node's output box maps to its on-path
   * inputs' boxes, or why this node cannot run on a window (absent: no window rule).
   */
  window?: (an: GraphAnalysis, node: NodeProto) => BoxMap | string;
  /**
   * For ops whose VJP cannot run on a window (it reads static shapes: MaxPool, Resize): how the
   * output box maps to the on-path inputs' boxes. In a windowed backward pass such a node's VJP
   * runs on the whole maps: its output gradients padded from their windows, its input gradients
   * sliced to theirs (../window.ts).
   */
  wholeMapBox?: (an: GraphAnalysis, node: NodeProto) => BoxMap | string;
}

/** The window rule of ops whose backward part keeps boxes as they are (pointwise, or per channel). */
export const sameBox = (): BoxMap => (b) => b;

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

export const ones = (n: number) => Array.from({ length: n }, () => 1);
export const zeros = (n: number) => Array.from({ length: n }, () => 0);
export const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

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
export function transposedWindow(w: Window, inSp: number[], outSp: number[]): { pads: number[]; outputPadding: number[] } {
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

/** windowOf's error for a node that window rules cannot read (the window plan then reports the reason). */
export const refuser = {
  refuse: (node: NodeProto, why: string) => new SegGradCamError(`node '${node.name || node.output[0]}' (${node.opType}): ${why}`, 'model'),
};
