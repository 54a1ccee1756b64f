/** Ops that rearrange or select values (reshapes, transposes, concatenation, slicing) and shape arithmetic (no gradient flows). */
import { attrInt, attrInts } from '../builder.js';
import type { NodeProto } from '../proto.js';
import { sameBox, zeros, type BoxMap, type OpGradient, type Vjp } from './context.js';
import type { GraphAnalysis } from '../analysis.js';

const reshapeBack: Vjp = (c, node, [g]) => {
  if (!g) return [];
  if (c.shape(node.output[0])[0] !== 1) c.batchable = false;
  return [c.reshape(g, c.shape(node.input[0]))];
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

const transpose: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const rank = c.shape(node.input[0]).length;
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm[0] !== 0) c.batchable = false;
  const inv = zeros(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.op('Transpose', [g], { perm: { ints: inv } })];
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

/** A channel concat keeps boxes; one along a spatial axis moves them. */
function concatWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const rank = an.shape(node.output[0]).length;
  const axis = attrInt(node, 'axis', 0);
  return axis === 1 || axis === 1 - rank ? sameBox() : 'concat along a spatial axis';
}

export const SHAPE_OPS: Record<string, OpGradient> = {
  Reshape: { inputs: [0], vjp: reshapeBack },
  Flatten: { inputs: [0], vjp: reshapeBack },
  Squeeze: { inputs: [0], vjp: reshapeBack },
  Unsqueeze: { inputs: [0], vjp: reshapeBack },
  Transpose: { inputs: [0], vjp: transpose },
  Concat: { vjp: concat, window: concatWindow },
  Slice: { inputs: [0], vjp: slice },
  Shape: { inputs: [] },
  Size: { inputs: [] },
  ConstantOfShape: { inputs: [] },
};
