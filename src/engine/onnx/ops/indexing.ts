/**
 * Selection and replication with constant indices: Gather (SegFormer's kv[0], kv[1]), Split,
 * Expand, Tile; and Constant (no inputs: never on a gradient path). Shape arithmetic
 * (Shape → Gather/Slice → Concat → Reshape) is integer-typed and depends on the input only
 * through its shape, so the gradient path (../gradient.ts keeps float tensors only) never enters it.
 */
import { attrInt } from '../builder.js';
import { type OpGradient, type Vjp } from './context.js';

/** Gather with constant indices: the gradient scattered back by a one-hot matrix along the axis (repeated indices add up). */
const gather: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const [x, indices] = node.input;
  const idx = c.an.numbers(indices);
  if (!idx) throw c.refuse(node, 'its indices must be a constant');
  const xs = c.shape(x);
  const rank = xs.length;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  const len = xs[axis];
  const n = idx.length;
  const oneHot = new Float32Array(n * len);
  idx.forEach((v, j) => (oneHot[j * len + (v < 0 ? v + len : v)] += 1));
  if (axis === 0) c.batchable = false;
  // g as [..before, n, ..after] → axis last → × one-hot [n, len] → back.
  const flat = [...xs.slice(0, axis), n, ...xs.slice(axis + 1)];
  const t = c.op('Reshape', [g, c.i64(axis === 0 ? flat : c.batchDims(flat))]);
  const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
  const inv = perm.map((_, i) => perm.indexOf(i));
  const moved = c.op('Transpose', [t], { perm: { ints: perm } });
  const spread = c.op('MatMul', [moved, c.b.floats('onehot', [n, len], oneHot)]);
  return [c.op('Transpose', [spread], { perm: { ints: inv } })];
};

/** Split: each output's gradient padded to its place along the axis, summed (outputs with no gradient add nothing). */
const split: Vjp = (c, node, gOut) => {
  const x = node.input[0];
  const xs = c.shape(x);
  const rank = xs.length;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  if (axis === 0) c.batchable = false;
  const parts: string[] = [];
  let offset = 0;
  node.output.forEach((o, i) => {
    const size = c.shape(o)[axis];
    const g = gOut[i];
    if (g) {
      const pads = new Array<number>(2 * rank).fill(0);
      pads[axis] = offset;
      pads[rank + axis] = xs[axis] - offset - size;
      parts.push(pads.every((p) => p === 0) ? g : c.op('Pad', [g, c.i64(pads)], { mode: { s: 'constant' } }));
    }
    offset += size;
  });
  if (parts.length === 0) return [];
  return [parts.length === 1 ? parts[0] : c.op('Sum', parts)];
};

const expand: Vjp = (c, node, [g]) => (g ? [c.unbroadcast(g, c.shape(node.output[0]), c.shape(node.input[0]))] : []);

/** Tile: the gradient viewed as [r0, d0, r1, d1, …] and summed over the repeats. */
const tile: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const xs = c.shape(x);
  const reps = c.an.numbers(node.input[1]);
  if (!reps) throw c.refuse(node, 'its repeats must be a constant');
  if (reps.every((r) => r === 1)) return [g];
  const dims = xs.flatMap((d, i) => [reps[i], d]);
  const axes = reps.flatMap((r, i) => (r > 1 ? [2 * i] : []));
  if (reps[0] > 1) c.batchable = false;
  const viewed = reps[0] > 1 ? c.op('Reshape', [g, c.i64(dims)]) : c.reshape(g, dims);
  return [c.reshape(c.reduceSum(viewed, axes, 1), xs)];
};

export const INDEXING_OPS: Record<string, OpGradient> = {
  Gather: { inputs: [0], vjp: gather },
  Split: { inputs: [0], vjp: split },
  Expand: { inputs: [0], vjp: expand },
  Tile: { inputs: [0], vjp: tile },
  Constant: { inputs: [] },
};
