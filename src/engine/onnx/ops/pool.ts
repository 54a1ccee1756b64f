/** Pooling: MaxPool (indices recomputed by a second MaxPool, then a scatter onto zeros), AveragePool, GlobalAveragePool. */
import type { GridBox } from '../../contract.js';
import type { GraphAnalysis } from '../analysis.js';
import { attrInt, attrInts, type Attr } from '../builder.js';
import type { NodeProto } from '../proto.js';
import { floatTensor } from '../tensor.js';
import { INT64_MAX, prod, refuser, transposedWindow, windowOf, type BoxMap, type OpGradient, type Vjp } from './context.js';

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

/** A 2-D pooling's output box → the input pixels its windows read: y[q] reads x[q·s − p + t·d], t < k. */
function poolBox(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const xs = an.shape(node.input[0]);
  const ys = an.shape(node.output[0]);
  if (xs.length !== 4) return 'not a 2-D pooling';
  const w = windowOf(refuser, node, xs.slice(2), ys.slice(2));
  return (b) =>
    [0, 1].map((i) => [b[i][0] * w.s[i] - w.pads[i], (b[i][1] - 1) * w.s[i] - w.pads[i] + (w.k[i] - 1) * w.d[i] + 1]) as GridBox;
}

export const POOL_OPS: Record<string, OpGradient> = {
  MaxPool: { inputs: [0], vjp: maxPool, wholeMapBox: poolBox },
  AveragePool: { inputs: [0], vjp: averagePool, wholeMapBox: poolBox },
  GlobalAveragePool: { inputs: [0], vjp: globalAveragePool },
};
