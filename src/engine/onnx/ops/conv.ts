/**
 * Conv and ConvTranspose: gradients through the input only, and their window rules. A stride-1
 * Conv's input gradient is a Conv with the weight flipped spatially and its first two axes
 * swapped (chosen over ONNX Runtime's slower ConvTranspose); other Convs use ConvTranspose with an
 * explicit output_padding; ConvTranspose's gradient is a Conv with the same weight.
 */
import { attrInt, attrInts, attrString } from '../builder.js';
import type { NodeProto } from '../proto.js';
import {
  INT64_MIN,
  ones,
  refuser,
  transposedWindow,
  windowOf,
  type BoxMap,
  type OpGradient,
  type Vjp,
  type VjpContext,
} from './context.js';
import type { GraphAnalysis } from '../analysis.js';
import type { GridBox } from '../../contract.js';

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
function convThroughConcat(c: VjpContext, node: NodeProto, g: string | null): Array<[string, string]> | null {
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

/** Stride-1 convolutions whose padding is within the kernel's reach: the box grows by the kernel. */
function convWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  const xs = an.shape(node.input[0]);
  const ys = an.shape(node.output[0]);
  if (xs.length !== 4) return 'not a 2-D convolution';
  const w = windowOf(refuser, node, xs.slice(2), ys.slice(2), an.shape(node.input[1]).slice(2));
  const reach = w.k.map((k, i) => (k - 1) * w.d[i]);
  if (w.s.some((s) => s !== 1)) return 'strided convolution';
  if (w.pads.some((p, i) => p > reach[i % 2])) return 'padding wider than the kernel';
  // y[q] reads x[q − p + t·d], t < k.
  return (b) => [0, 1].map((i) => [b[i][0] - w.pads[i], b[i][1] - w.pads[i] + reach[i]]) as GridBox;
}

/** Transposed convolutions with explicit pads: the output box maps back to the input pixels that reach it. */
function convTransposeWindow(an: GraphAnalysis, node: NodeProto): BoxMap | string {
  if (attrInts(node, 'output_shape') || attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') return 'output_shape or auto_pad';
  const xs = an.shape(node.input[0]);
  const ys = an.shape(node.output[0]);
  if (xs.length !== 4) return 'not a 2-D transposed convolution';
  const w = windowOf(refuser, node, xs.slice(2), ys.slice(2), an.shape(node.input[1]).slice(2));
  // y[i·s − p + t·d] receives x[i], t < k.
  return (b) =>
    [0, 1].map((i) => [
      Math.ceil((b[i][0] + w.pads[i] - (w.k[i] - 1) * w.d[i]) / w.s[i]),
      Math.floor((b[i][1] - 1 + w.pads[i]) / w.s[i]) + 1,
    ]) as GridBox;
}

export const CONV_OPS: Record<string, OpGradient> = {
  Conv: { inputs: [0, 1, 2], vjp: conv, through: convThroughConcat, window: convWindow },
  ConvTranspose: { inputs: [0, 1, 2], vjp: convTranspose, window: convTransposeWindow },
};
