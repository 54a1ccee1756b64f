/** ReduceMax and ReduceMin: the gradient goes to the elements equal to the result (to each, on ties). */
import { attrInt, attrInts } from '../builder.js';
import type { OpGradient, Vjp } from './context.js';

const reduceExtreme: Vjp = (c, node, [g]) => {
  if (!g) return [];
  const x = node.input[0];
  const y = node.output[0];
  const xs = c.shape(x);
  const rank = xs.length;
  // The axes moved from an attribute to an input in opset 18.
  let axes = c.opset >= 18 ? (node.input[1] ? c.an.numbers(node.input[1]) : null) : (attrInts(node, 'axes') ?? null);
  if (c.opset >= 18 && node.input[1] && !axes) throw c.refuse(node, 'its axes are not a constant');
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return [g];
    axes = Array.from({ length: rank }, (_, i) => i);
  }
  const norm = axes.map((a) => (a < 0 ? a + rank : a));
  if (norm.includes(0) && xs[0] !== 1) c.batchable = false;
  const kept = xs.map((d, i) => (norm.includes(i) ? 1 : d));
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const yk = keep ? y : c.op('Reshape', [y, c.i64(kept)]);
  const gk = keep ? g : c.reshape(g, kept);
  const mask = c.op('Cast', [c.op('Equal', [x, yk])], { to: { i: 1 } });
  return [c.op('Mul', [mask, gk])];
};

export const REDUCE_OPS: Record<string, OpGradient> = {
  ReduceMax: { inputs: [0], vjp: reduceExtreme },
  ReduceMin: { inputs: [0], vjp: reduceExtreme },
};
