/** Activations, batch norm (inference) and identities: element-wise or per-channel maps, whose windows keep the box. */
import { attrFloat, attrInt } from '../builder.js';
import type { NodeProto } from '../proto.js';
import { ones, sameBox, type BoxMap, type OpGradient, type Vjp, type VjpContext } from './context.js';
import type { GraphAnalysis } from '../analysis.js';

const passThrough: Vjp = (_c, _node, [g]) => [g];

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

const cast: Vjp = (c, node, [g]) => {
  if (!g) return [];
  if (!c.an.isFloat(node.input[0])) return [null];
  return [g];
};

/** Softmax over the channel axis keeps boxes; over a spatial axis it mixes the whole map. */
function softmaxWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const rank = an.shape(node.input[0]).length;
  let axis = attrInt(node, 'axis', an.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  return axis === 1 && (an.opset >= 13 || rank === 2) ? sameBox() : 'normalises over a spatial axis';
}

export const POINTWISE_OPS: Record<string, OpGradient> = {
  Relu: { vjp: relu, window: sameBox },
  LeakyRelu: { vjp: leakyRelu, window: sameBox },
  Clip: { inputs: [0, 1, 2], vjp: clip, window: sameBox },
  Sigmoid: { vjp: sigmoid, window: sameBox },
  HardSigmoid: { vjp: hardSigmoid, window: sameBox },
  HardSwish: { vjp: hardSwish, window: sameBox },
  Tanh: { vjp: tanh, window: sameBox },
  Softmax: { vjp: softmax, window: softmaxWindow },
  LogSoftmax: { vjp: logSoftmax, window: softmaxWindow },
  BatchNormalization: { inputs: [0, 1, 2, 3, 4], vjp: batchNorm, window: sameBox },
  Identity: { inputs: [0], vjp: passThrough, window: sameBox },
  Dropout: { inputs: [0], vjp: passThrough, window: sameBox },
  Cast: { inputs: [0], vjp: cast, window: sameBox },
};
