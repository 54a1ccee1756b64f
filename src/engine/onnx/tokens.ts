/**
 * Token layers: a transformer's residual stream ([1, N, C], or [1, C, N]) whose N is the h·w of
 * a spatial grid of the same model (N = h·w + 1: a class token first, dropped) is explained as
 * that grid. At load, each such tensor T gets an in-line view in the graph:
 *
 *   producer → T/tokens ─(Slice off the class token)→ Reshape → Transpose → T [1, C, h, w]
 *            → Transpose → Reshape (→ Concat the class token back) → T/restored → T's readers
 *
 * so the layer keeps its ONNX name, is an ordinary NCHW map for the rest of the engine (layer
 * list, gradient graphs, caches), and its gradient is exactly ∂S/∂T laid out on the grid
 * (n = i·w + j). Only the outputs of Add and LayerNormalization nodes (the residual stream and
 * its norms, the tensors pytorch-grad-cam users hook with a reshape_transform) get a view.
 * The grid is automatic when exactly one grid size of the input or of a Conv/Pool/Resize output fits N; otherwise
 * (or to choose) the `grid` option gives [h, w]; a token tensor that fits no grid is left as is.
 */
import { SegGradCamError } from '../../errors.js';
import type { ProbedTensor } from './analysis.js';
import { GraphBuilder } from './builder.js';
import { DataType, type ModelProto, type NodeProto } from './proto.js';

/** Producers whose 3-D outputs are offered as token layers. */
const TOKEN_PRODUCERS = new Set(['Add', 'LayerNormalization']);

export interface TokenView {
  /** The token tensor's name (now the grid view's). */
  name: string;
  grid: [number, number];
  layout: 'NLC' | 'NCL';
  /** Leading tokens dropped (1: a class token). */
  dropped: number;
}

/**
 * Ops whose 4-D outputs are maps of the image (a head split [1, N, heads, d] or a Gather of keys
 * [1, heads, n, d] is 4-D too, but not a grid).
 */
const SPATIAL = new Set(['Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'Resize']);

/** Grid sizes [h, w] of the input and of the model's spatial maps. */
function gridsOf(model: ModelProto, probe: Map<string, ProbedTensor>, inputName: string): Array<[number, number]> {
  const seen = new Map<string, [number, number]>();
  const add = (d: number[] | undefined) => {
    if (d && d.length === 4 && d[2] * d[3] > 1) seen.set(`${d[2]}x${d[3]}`, [d[2], d[3]]);
  };
  add(probe.get(inputName)?.dims);
  for (const n of model.graph.node)
    if (SPATIAL.has(n.opType) && probe.get(n.output[0])?.dataType === DataType.FLOAT) add(probe.get(n.output[0])?.dims);
  return [...seen.values()];
}

/** The grid (and dropped tokens) for N tokens, or null when none or several fit. */
function fitGrid(n: number, grids: Array<[number, number]>, given?: [number, number]): { grid: [number, number]; dropped: number } | null {
  if (given) {
    for (const dropped of [0, 1]) if (given[0] * given[1] === n - dropped) return { grid: given, dropped };
    return null;
  }
  for (const dropped of [0, 1]) {
    const fits = grids.filter(([h, w]) => h * w === n - dropped);
    if (fits.length === 1) return { grid: fits[0], dropped };
    if (fits.length > 1) return null;
  }
  return null;
}

/**
 * The model with a grid view in place of every token layer, and the probe extended with the new
 * tensors' shapes (no second run: every added tensor's shape follows from T's).
 */
export function withTokenViews(
  model: ModelProto,
  probe: Map<string, ProbedTensor>,
  options: { inputName: string; outputName: string; grid?: [number, number] },
): { model: ModelProto; probe: Map<string, ProbedTensor>; views: TokenView[] } {
  if (options.grid && !(options.grid.length === 2 && options.grid.every((v) => Number.isInteger(v) && v > 0)))
    throw new SegGradCamError(`the token grid must be two positive integers (h, w), got ${options.grid.join(', ')}`, 'usage');
  const g = model.graph;
  const outputs = new Set(g.output.map((o) => o.name));
  const grids = gridsOf(model, probe, options.inputName);
  const candidates: Array<{ node: NodeProto; view: TokenView }> = [];
  for (const node of g.node) {
    if (!TOKEN_PRODUCERS.has(node.opType) || (node.domain && node.domain !== 'ai.onnx')) continue;
    const t = node.output[0];
    const p = probe.get(t);
    if (!t || outputs.has(t) || !p || p.dataType !== DataType.FLOAT || p.dims.length !== 3 || p.dims[0] !== 1) continue;
    const nlc = fitGrid(p.dims[1], grids, options.grid);
    const ncl = fitGrid(p.dims[2], grids, options.grid);
    if (nlc && !ncl) candidates.push({ node, view: { name: t, ...nlc, layout: 'NLC' } });
    else if (ncl && !nlc) candidates.push({ node, view: { name: t, ...ncl, layout: 'NCL' } });
  }
  if (candidates.length === 0) return { model, probe, views: [] };

  const out: ModelProto = { ...model, graph: { ...g, node: [...g.node], initializer: [...g.initializer] } };
  const b = new GraphBuilder(out.graph, 'sgc/');
  const shapes = new Map(probe);
  const float = (dims: number[]): ProbedTensor => ({ dims, dataType: DataType.FLOAT });
  for (const { view } of candidates) {
    const t = view.name;
    const [, a1, a2] = (probe.get(t) as ProbedTensor).dims;
    const [h, w] = view.grid;
    const nlc = view.layout === 'NLC';
    const c = nlc ? a2 : a1;
    const axis = nlc ? 1 : 2;
    const n = nlc ? a1 : a2;
    const start = out.graph.node.length;
    const raw = b.fresh(`${t}/tokens`);
    // The producer as it is now (an earlier view may have rewired its inputs).
    const at = out.graph.node.findIndex((x) => x.output[0] === t);
    const current = out.graph.node[at];
    out.graph.node[at] = { ...current, output: current.output.map((o, i) => (i === 0 ? raw : o)) };
    shapes.set(raw, float([1, a1, a2]));
    let tokens = raw;
    if (view.dropped > 0) {
      tokens = b.op('Slice', [raw, b.ints('c', [view.dropped]), b.ints('c', [n]), b.ints('c', [axis])]);
      shapes.set(tokens, float(nlc ? [1, h * w, c] : [1, c, h * w]));
    }
    if (nlc) {
      const r = b.op('Reshape', [tokens, b.ints('c', [1, h, w, c])]);
      shapes.set(r, float([1, h, w, c]));
      b.node('Transpose', [r], { perm: { ints: [0, 3, 1, 2] } }, [t]);
    } else b.node('Reshape', [tokens, b.ints('c', [1, c, h, w])], {}, [t]);
    shapes.set(t, float([1, c, h, w]));
    let back: string;
    if (nlc) {
      const tr = b.op('Transpose', [t], { perm: { ints: [0, 2, 3, 1] } });
      shapes.set(tr, float([1, h, w, c]));
      back = b.op('Reshape', [tr, b.ints('c', [1, h * w, c])]);
    } else back = b.op('Reshape', [t, b.ints('c', [1, c, h * w])]);
    shapes.set(back, float(nlc ? [1, h * w, c] : [1, c, h * w]));
    if (view.dropped > 0) {
      const head = b.op('Slice', [raw, b.ints('c', [0]), b.ints('c', [view.dropped]), b.ints('c', [axis])]);
      shapes.set(head, float(nlc ? [1, view.dropped, c] : [1, c, view.dropped]));
      back = b.op('Concat', [head, back], { axis: { i: axis } });
      shapes.set(back, float([1, a1, a2]));
    }
    const added = out.graph.node.splice(start);
    // The original readers read the restored tokens; only the view reads T.
    out.graph.node = out.graph.node.map((r) => (r.input.includes(t) ? { ...r, input: r.input.map((i) => (i === t ? back : i)) } : r));
    out.graph.node.splice(at + 1, 0, ...added);
  }
  return { model: out, probe: shapes, views: candidates.map((c) => c.view) };
}
