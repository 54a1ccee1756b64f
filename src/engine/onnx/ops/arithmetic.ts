/** Sums, products, quotients, matrix products and reductions (broadcast operands summed back to their shapes). */
import { attrFloat, attrInt, attrInts } from '../builder.js';
import type { NodeProto } from '../proto.js';
import { sameBox, type BoxMap, type OpGradient, type Vjp } from './context.js';
import type { GraphAnalysis } from '../analysis.js';

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

/** Element-wise ops keep boxes when every operand is a data-dependent map of the output's shape. */
function elementwiseWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const ys = an.shape(node.output[0]).join(',');
  const ok = node.input.every((i) => an.dataDependent.has(i) && an.shape(i).join(',') === ys);
  return ok ? sameBox() : 'operands of different shapes (broadcasting) or constant maps';
}

export const ARITHMETIC_OPS: Record<string, OpGradient> = {
  Add: { vjp: addSub(1), window: elementwiseWindow },
  Sub: { vjp: addSub(-1), window: elementwiseWindow },
  Sum: { vjp: addSub(1), window: elementwiseWindow },
  Mul: { vjp: mul, window: elementwiseWindow },
  Div: { vjp: div, window: elementwiseWindow },
  Gemm: { vjp: gemm },
  MatMul: { vjp: matMul },
  ReduceSum: { inputs: [0], vjp: reduce(false) },
  ReduceMean: { inputs: [0], vjp: reduce(true) },
};
