/**
 * Instance and layer normalization (inference): the gradient through the input, with the
 * statistics recomputed in the backward graph from the saved input. For x̂ = (x − μ)/σ over the
 * normalised axes and y = γ·x̂ + β: ∂x = (γ·g − mean(γ·g) − x̂·mean(γ·g·x̂)) / σ. GroupNormalization
 * as PyTorch exports it (Reshape → InstanceNormalization → Reshape → Mul → Add) is covered by
 * these records and the shape and arithmetic ones.
 */
import { attrFloat, attrInt } from '../builder.js';
import type { NodeProto } from '../proto.js';
import { ones, sameBox, type OpGradient, type Vjp, type VjpContext } from './context.js';

/** ReduceMean over `axes` keeping them (the axes moved from an attribute to an input in opset 18). */
export function reduceMean(c: VjpContext, x: string, axes: number[]): string {
  if (c.opset >= 18) return c.op('ReduceMean', [x, c.i64(axes)], { keepdims: { i: 1 } });
  return c.op('ReduceMean', [x], { axes: { ints: axes }, keepdims: { i: 1 } });
}

/** ∂x of a normalisation over `axes` of x, given γ·g (the gradient at x̂). */
function normalisedVjp(c: VjpContext, x: string, gHat: string, axes: number[], eps: number): string {
  const xc = c.op('Sub', [x, reduceMean(c, x, axes)]);
  const invStd = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [reduceMean(c, c.op('Mul', [xc, xc]), axes), c.f32(eps)])])]);
  const xHat = c.op('Mul', [xc, invStd]);
  const inner = c.op('Sub', [
    c.op('Sub', [gHat, reduceMean(c, gHat, axes)]),
    c.op('Mul', [xHat, reduceMean(c, c.op('Mul', [gHat, xHat]), axes)]),
  ]);
  return c.op('Mul', [inner, invStd]);
}

const refuseParams = (c: VjpContext, node: NodeProto, wanted: boolean[]) => {
  if (wanted.slice(1).some(Boolean)) throw c.refuse(node, 'gradients through its scale or bias are not supported');
};

const instanceNorm: Vjp = (c, node, [g], wanted) => {
  refuseParams(c, node, wanted);
  if (!g) return [];
  const [x, scale] = node.input;
  const xs = c.shape(x);
  const rank = xs.length;
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const gamma = c.op('Reshape', [scale, c.i64([xs[1], ...ones(rank - 2)])]);
  const axes = Array.from({ length: rank - 2 }, (_, i) => i + 2);
  return [normalisedVjp(c, x, c.op('Mul', [g, gamma]), axes, eps)];
};

const layerNorm: Vjp = (c, node, [g], wanted) => {
  refuseParams(c, node, wanted);
  if (!g) return [];
  if (node.output.slice(1).some((o) => o && c.isOnPath(o)))
    throw c.refuse(node, 'gradients through its Mean or InvStdDev outputs are not supported');
  const [x, scale] = node.input;
  const rank = c.shape(x).length;
  let axis = attrInt(node, 'axis', -1);
  if (axis < 0) axis += rank;
  if (axis === 0) c.batchable = false;
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  return [normalisedVjp(c, x, c.op('Mul', [g, scale]), axes, eps)];
};

/** Layer normalization over the channel axis alone keeps boxes; any spatial axis mixes the map. */
function layerNormWindow(an: import('../analysis.js').GraphAnalysis, node: NodeProto) {
  const rank = an.shape(node.input[0]).length;
  let axis = attrInt(node, 'axis', -1);
  if (axis < 0) axis += rank;
  return rank === 2 && axis === 1 ? sameBox() : 'normalises over a spatial axis';
}

export const NORMALIZATION_OPS: Record<string, OpGradient> = {
  InstanceNormalization: { inputs: [0, 1, 2], vjp: instanceNorm, window: () => 'normalises over the whole map' },
  LayerNormalization: { inputs: [0, 1, 2], vjp: layerNorm, window: layerNormWindow },
};
