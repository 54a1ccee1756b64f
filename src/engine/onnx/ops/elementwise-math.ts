/**
 * Element-wise functions (Erf, Sqrt, Exp, Log, Neg, Abs, Pow with a constant exponent), PRelu,
 * element-wise Min/Max and Where with a constant condition: every gradient is the output
 * gradient times a local derivative, summed back to each operand's shape when it broadcasts.
 */
import type { GraphAnalysis } from '../analysis.js';
import type { NodeProto } from '../proto.js';
import { sameBox, type BoxMap, type OpGradient, type Vjp } from './context.js';

/** A unary op whose derivative is a function of its input x and output y. */
const unary =
  (local: (c: Parameters<Vjp>[0], x: string, y: string) => string): Vjp =>
  (c, node, [g]) =>
    g ? [c.op('Mul', [g, local(c, node.input[0], node.output[0])])] : [];

/** d erf(x)/dx = 2/√π · exp(−x²). */
const erf = unary((c, x) => c.op('Mul', [c.op('Exp', [c.op('Neg', [c.op('Mul', [x, x])])]), c.f32(2 / Math.sqrt(Math.PI))]));
const sqrt = unary((c, _x, y) => c.op('Reciprocal', [c.op('Mul', [y, c.f32(2)])]));
const exp = unary((_c, _x, y) => y);
const log = unary((c, x) => c.op('Reciprocal', [x]));
const abs = unary((c, x) => c.op('Sign', [x]));
const neg: Vjp = (c, _node, [g]) => (g ? [c.op('Neg', [g])] : []);

/** x^e with a constant exponent e: e·x^(e−1) (the exponent is broadcast like the op's own). */
const pow: Vjp = (c, node, [g], wanted) => {
  if (wanted[1]) throw c.refuse(node, 'gradients through the exponent are not supported');
  if (!g) return [];
  const [x, e] = node.input;
  const ex = c.an.isFloat(e) ? e : c.op('Cast', [e], { to: { i: 1 } });
  const local = c.op('Mul', [ex, c.op('Pow', [x, c.op('Sub', [ex, c.f32(1)])])]);
  return [c.unbroadcast(c.op('Mul', [g, local]), c.shape(node.output[0]), c.shape(x))];
};

/** PRelu: g where x > 0, g·slope elsewhere (the slope broadcasts to x's shape). */
const prelu: Vjp = (c, node, [g], wanted) => {
  if (wanted[1]) throw c.refuse(node, 'gradients through its slope are not supported');
  if (!g) return [];
  const [x, slope] = node.input;
  return [c.op('Where', [c.op('Greater', [x, c.f32(0)]), g, c.op('Mul', [g, slope])])];
};

/** Min/Max of any number of operands: the gradient goes to the operands equal to the output (to each, on ties). */
const minMax: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const y = node.output[0];
  const ys = c.shape(y);
  return node.input.map((inp, i) => {
    if (!wanted[i]) return null;
    const mask = c.op('Cast', [c.op('Equal', [inp, y])], { to: { i: 1 } });
    return c.unbroadcast(c.op('Mul', [g, mask]), ys, c.shape(inp));
  });
};

/** Where(cond, a, b): the gradient to a where cond holds, to b elsewhere (the condition is constant or off the path). */
const where: Vjp = (c, node, [g], wanted) => {
  if (!g) return [];
  const [cond, a, b] = node.input;
  const ys = c.shape(node.output[0]);
  const zero = c.f32(0);
  return [
    null,
    wanted[1] ? c.unbroadcast(c.op('Where', [cond, g, zero]), ys, c.shape(a)) : null,
    wanted[2] ? c.unbroadcast(c.op('Where', [cond, zero, g]), ys, c.shape(b)) : null,
  ];
};

/** Operands of the output's shape (or constants that broadcast per channel) keep boxes. */
function operandsWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const ys = an.shape(node.output[0]).join(',');
  const ok = node.input.every((i) => !i || !an.dataDependent.has(i) || an.shape(i).join(',') === ys);
  const constantsPerChannel = node.input.every(
    (i) =>
      !i ||
      an.dataDependent.has(i) ||
      an
        .shape(i)
        .slice(-2)
        .every((d) => d === 1) ||
      an.shape(i).length < 2,
  );
  return ok && constantsPerChannel ? sameBox() : 'operands of different shapes (broadcasting) or constant maps';
}

export const ELEMENTWISE_MATH_OPS: Record<string, OpGradient> = {
  Erf: { vjp: erf, window: sameBox },
  Sqrt: { vjp: sqrt, window: sameBox },
  Exp: { vjp: exp, window: sameBox },
  Log: { vjp: log, window: sameBox },
  Abs: { vjp: abs, window: sameBox },
  Neg: { vjp: neg, window: sameBox },
  Pow: { inputs: [0, 1], vjp: pow, window: operandsWindow },
  PRelu: { inputs: [0, 1], vjp: prelu, window: operandsWindow },
  Min: { vjp: minMax, window: operandsWindow },
  Max: { vjp: minMax, window: operandsWindow },
  Where: { inputs: [1, 2], vjp: where, window: operandsWindow },
};
