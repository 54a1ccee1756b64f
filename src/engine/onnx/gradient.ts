/**
 * Reverse-mode differentiation as a graph transformation. From a model's graph, a layer L and
 * the logits, build an augmented graph:
 *
 *   inputs:  the model's input, `sgc/cotangent` (∂S/∂logits: region mask × class one-hot, NCHW,
 *            K of them stacked on axis 0 when the graph is batchable)
 *   outputs: the model's outputs, `sgc/activation` = A (the layer's output),
 *            `sgc/gradient` = ∂S/∂A ([K, …A's shape without its batch axis])
 *
 * Each op on the path from L to the logits gets its vector-Jacobian product written in ONNX ops
 * (one record per op type in ./ops/); a tensor read by several nodes sums its gradient contributions. A new region or
 * class only changes the cotangent fed at run time, never the graph.
 *
 * `backwardGraph` cuts the augmented graph down to the backward part alone: the forward tensors
 * that the VJPs read (ReLU outputs, max-pool inputs, …) become inputs, so a new region on a
 * cached forward pass runs only the backward ops.
 */
import { SegGradCamError } from '../../errors.js';
import type { GraphAnalysis } from './analysis.js';
import { GraphBuilder, nodeLabel, valueInfo } from './builder.js';
import { DataType, type ModelProto, type NodeProto } from './proto.js';
import { SUPPORTED_OPS, VjpContext, opGradient, sigmoidVjp, softmaxVjp } from './ops/index.js';
import { scheduleEarly } from './early.js';

export const COTANGENT = 'sgc/cotangent';
export const ACTIVATION = 'sgc/activation';
export const GRADIENT = 'sgc/gradient';
/** Output name of the gradient at the i-th of `alsoLayers` (see GradientGraphOptions). */
export const extraGradientName = (i: number): string => `sgc/gradient_${i}`;

export interface GradientGraph {
  /** The augmented model (forward + backward). */
  model: ModelProto;
  layer: string;
  logits: string;
  /** Data-dependent forward tensors that the backward ops read. */
  saved: string[];
  /** True when K cotangents can be stacked on axis 0 (every op on the path keeps the batch axis apart). */
  batchable: boolean;
  /** Shape of the cotangent input ([K|1, …logits shape[1:]]). */
  cotangentShape: Array<number | string>;
  /** Number of nodes added for the backward part, and the position of the first one in the graph's node list. */
  backwardNodes: number;
  firstBackward: number;
  /** The `alsoLayers` whose gradients are outputs too (extraGradientName(i)). */
  alsoLayers: string[];
  /** The backward nodes written by whole-map VJPs (options.wholeMap): they read saved tensors whole. */
  wholeMapNodes: Set<NodeProto>;
}

export { SUPPORTED_OPS };

/** Input positions of a node through which a gradient can flow. */
const differentiableInputs = (n: NodeProto): number[] => opGradient(n)?.inputs ?? n.input.map((_, i) => i);

/** Tensors on a differentiable path from `layer` to `logits`, and the nodes to differentiate (in order). */
export function gradientPath(an: GraphAnalysis, layer: string, logits: string): { nodes: NodeProto[]; onPath: Set<string> } {
  const downstream = new Set<string>([layer]);
  const order = an.ordered();
  for (const n of order) {
    if (differentiableInputs(n).some((i) => n.input[i] && downstream.has(n.input[i]))) {
      for (const o of n.output) if (o && an.isFloat(o)) downstream.add(o);
    }
  }
  if (!downstream.has(logits)) {
    throw new SegGradCamError(`layer '${layer}' does not influence the logits '${logits}': its gradient is zero everywhere`, 'layer');
  }
  const needed = new Set<string>([logits]);
  const nodes: NodeProto[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    if (!n.output.some((o) => needed.has(o))) continue;
    const ins = differentiableInputs(n)
      .map((i) => n.input[i])
      .filter((i) => i && downstream.has(i));
    if (ins.length === 0) continue;
    nodes.push(n);
    for (const i of ins) needed.add(i);
  }
  nodes.reverse();
  return { nodes, onPath: new Set([...needed].filter((t) => downstream.has(t))) };
}

export interface GradientGraphOptions {
  /** Also expose the saved tensors as outputs (to fill a cache for later backward-only runs). */
  saveOutputs?: boolean;
  /**
   * 'probability': the cotangent is ∂S/∂p for p = softmax over the channel axis (axis 1) of the
   * logits, or their sigmoid; the graph applies that activation's VJP itself. Default 'logits'.
   */
  on?: 'logits' | 'probability';
  probability?: 'softmax' | 'sigmoid';
  /**
   * More tensors on the path from `layer` to the logits whose gradients the same backward pass
   * also outputs (every tensor's gradient is on the way): many layers for one backward run.
   */
  alsoLayers?: string[];
  /**
   * Called for every gradient contribution from a node's output `from` to its input `to`; returns
   * the tensor to use instead (windowed graphs pad a gradient that changes scale, see window.ts).
   */
  rescale?: (b: GraphBuilder, from: string, to: string, g: string) => string;
  /**
   * Nodes whose VJP runs on whole maps inside a windowed backward part (window.ts): `pad` turns
   * an output's windowed gradient into the whole map before the VJP, `slice` cuts each input's
   * gradient back to its window after it (no `rescale` then).
   */
  wholeMap?: {
    nodes: Set<NodeProto>;
    pad: (b: GraphBuilder, tensor: string, g: string) => string;
    slice: (b: GraphBuilder, tensor: string, g: string) => string;
  };
}

/** Builds the augmented graph for ∂S/∂(layer). */
export function buildGradientGraph(an: GraphAnalysis, layer: string, logits: string, options: GradientGraphOptions = {}): GradientGraph {
  if (an.opset < 10) {
    throw new SegGradCamError(
      `the model uses opset ${an.opset}: gradient graphs need opset 10 or later (export with opset_version 11–17)`,
      'model',
    );
  }
  const model: ModelProto = {
    ...an.model,
    graph: {
      ...an.model.graph,
      node: [...an.model.graph.node],
      initializer: [...an.model.graph.initializer],
      input: [...an.model.graph.input],
      output: [...an.model.graph.output],
      valueInfo: [],
    },
  };
  const g = model.graph;
  const b = new GraphBuilder(g, 'sgc/');
  const forwardTensors = new Set<string>([an.inputName, ...an.nodes.flatMap((n) => n.output)]);
  const { nodes, onPath } = gradientPath(an, layer, logits);
  const alsoWanted = new Set(options.alsoLayers ?? []);
  const ctx = new VjpContext(an, b, onPath);
  // K stacked cotangents travel on axis 0: every tensor on the path must have a batch axis of 1.
  for (const t of onPath) if (an.shape(t)[0] !== 1) ctx.batchable = false;
  const firstBackward = g.node.length;
  const wholeMapNodes = new Set<NodeProto>();

  const grads = new Map<string, string[]>();
  const add = (t: string, gname: string) => {
    const list = grads.get(t);
    if (list) list.push(gname);
    else grads.set(t, [gname]);
  };
  b.claim(COTANGENT);
  if (options.on === 'probability') add(logits, probabilityVjp(ctx, logits, COTANGENT, options.probability ?? 'softmax'));
  else add(logits, COTANGENT);
  const total = (t: string): string | null => {
    const list = grads.get(t);
    if (!list || list.length === 0) return null;
    if (list.length === 1) return list[0];
    const s = b.op('Sum', list, {}, `grad_sum`);
    grads.set(t, [s]);
    return s;
  };

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    const record = opGradient(node);
    const vjp = record?.vjp;
    if (!vjp || (node.domain && node.domain !== 'ai.onnx')) {
      throw new SegGradCamError(
        `cannot differentiate through op '${node.domain ? `${node.domain}.` : ''}${node.opType}' (node '${nodeLabel(node)}') on the path from '${layer}' to the logits; supported ops: ${SUPPORTED_OPS.join(', ')}`,
        'model',
      );
    }
    const whole = options.wholeMap?.nodes.has(node) ? options.wholeMap : null;
    const gOut = node.output.map((o) => {
      const t = o && onPath.has(o) ? total(o) : null;
      return t && whole ? whole.pad(b, o, t) : t;
    });
    if (whole) {
      const mark = g.node.length;
      const wantedWhole = node.input.map((i) => !!i && onPath.has(i));
      const gWhole = vjp(ctx, node, gOut, wantedWhole);
      for (const n of g.node.slice(mark)) wholeMapNodes.add(n);
      node.input.forEach((i, idx) => {
        const gi = gWhole[idx];
        if (wantedWhole[idx] && gi) add(i, whole.slice(b, i, gi));
      });
      continue;
    }
    // Narrowing skips the concat's own gradient: not when that gradient is asked for.
    const narrowed = alsoWanted.has(node.input[0]) ? null : (record?.through?.(ctx, node, gOut[0]) ?? null);
    const rescale = (t: string, gi: string) => (options.rescale ? options.rescale(b, node.output[0], t, gi) : gi);
    if (narrowed) {
      for (const [t, gi] of narrowed) add(t, rescale(t, gi));
      continue;
    }
    const wanted = node.input.map((i) => !!i && onPath.has(i));
    const gIn = vjp(ctx, node, gOut, wanted);
    node.input.forEach((i, idx) => {
      const gi = gIn[idx];
      if (wanted[idx] && gi) add(i, rescale(i, gi));
    });
  }
  const gLayer = total(layer);
  if (!gLayer) throw new SegGradCamError(`no gradient reaches layer '${layer}'`, 'layer');
  const alsoLayers = options.alsoLayers ?? [];
  const extraOutputs = alsoLayers.map((t, i) => {
    const gt = total(t);
    if (!gt) throw new SegGradCamError(`layer '${t}' is not on the path from '${layer}' to the logits`, 'layer');
    const name = extraGradientName(i);
    b.claim(name);
    b.node('Identity', [gt], {}, [name], `gradient_${i}`);
    return name;
  });

  b.claim(GRADIENT);
  b.node('Identity', [gLayer], {}, [GRADIENT], 'gradient');
  // Forward tensors read by the backward ops (data-dependent ones must be saved or recomputed).
  const backwardNodes = g.node.slice(firstBackward);
  const saved = new Set<string>();
  for (const n of backwardNodes) {
    for (const i of n.input) if (forwardTensors.has(i) && an.dataDependent.has(i)) saved.add(i);
  }
  b.claim(ACTIVATION);
  b.node('Identity', [layer], {}, [ACTIVATION], 'activation');
  // What the backward part computes from forward tensors alone runs as soon as they exist (./early.ts).
  scheduleEarly(b, firstBackward, COTANGENT, (t) =>
    forwardTensors.has(t) && an.dataDependent.has(t) ? (an.dataType(t) ?? DataType.FLOAT) : undefined,
  );

  const batchable = ctx.batchable;
  const logitsShape = an.shape(logits);
  const cotangentShape: Array<number | string> = [batchable ? 'K' : logitsShape[0], ...logitsShape.slice(1)];
  g.input.push(valueInfo(COTANGENT, DataType.FLOAT, cotangentShape));
  const aShape = an.shape(layer);
  g.output.push(valueInfo(ACTIVATION, DataType.FLOAT, aShape));
  g.output.push(valueInfo(GRADIENT, DataType.FLOAT, [batchable ? 'K' : aShape[0], ...aShape.slice(1)]));
  alsoLayers.forEach((t, i) => {
    const sh = an.shape(t);
    g.output.push(valueInfo(extraOutputs[i], DataType.FLOAT, [batchable ? 'K' : sh[0], ...sh.slice(1)]));
  });
  if (options.saveOutputs) {
    const outs = new Set(g.output.map((o) => o.name));
    for (const s of saved)
      if (!outs.has(s) && s !== an.inputName) g.output.push(valueInfo(s, an.dataType(s) ?? DataType.FLOAT, an.shape(s)));
  }
  ensureOpset(model, ctx.minOpset);
  return {
    model,
    layer,
    logits,
    saved: [...saved],
    batchable,
    cotangentShape,
    backwardNodes: backwardNodes.length,
    firstBackward,
    alsoLayers,
    wholeMapNodes,
  };
}

/**
 * The backward part of an augmented graph alone: inputs `sgc/cotangent` and the saved forward
 * tensors; outputs `sgc/gradient` (and those of `alsoLayers`). Forward nodes that do not depend on the input data (constants,
 * weights computed in the graph) are kept.
 */
export function backwardGraph(
  an: GraphAnalysis,
  gg: GradientGraph & { windowInputs?: Array<{ name: string }> },
): { model: ModelProto; inputs: string[] } {
  const src = gg.model.graph;
  const producer = new Map<string, NodeProto>();
  for (const n of src.node) for (const o of n.output) if (o) producer.set(o, n);
  const inits = new Set(src.initializer.map((t) => t.name));
  const saved = new Set(gg.saved);
  const windowInputs = new Set((gg.windowInputs ?? []).map((w) => w.name));
  const keep = new Set<NodeProto>();
  const inputs = new Set<string>();
  const outputs = new Set([GRADIENT, ...gg.alsoLayers.map((_, i) => extraGradientName(i))]);
  const stack = [...outputs];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const t = stack.pop() as string;
    if (!t || seen.has(t)) continue;
    seen.add(t);
    if (t === COTANGENT || saved.has(t)) {
      inputs.add(t);
      continue;
    }
    if (windowInputs.has(t)) continue;
    if (inits.has(t)) continue;
    const p = producer.get(t);
    if (!p) throw new SegGradCamError(`internal error: the backward graph needs '${t}', which is neither saved nor computable`, 'model');
    if (p.input.some((i) => i === an.inputName)) {
      throw new SegGradCamError(`internal error: the backward graph needs '${t}' from the model input`, 'model');
    }
    keep.add(p);
    for (const i of p.input) stack.push(i);
  }
  const node = src.node.filter((n) => keep.has(n));
  const usedInits = new Set(node.flatMap((n) => n.input));
  const cot = src.input.find((i) => i.name === COTANGENT);
  const windowDecl = src.input.filter((i) => windowInputs.has(i.name));
  const inputList = [...inputs].filter((i) => i !== COTANGENT).sort();
  const model: ModelProto = {
    ...gg.model,
    graph: {
      ...src,
      node,
      initializer: src.initializer.filter((t) => usedInits.has(t.name as string)),
      input: [...(cot ? [cot] : []), ...inputList.map((i) => valueInfo(i, an.dataType(i) ?? DataType.FLOAT, an.shape(i))), ...windowDecl],
      output: src.output.filter((o) => outputs.has(o.name as string)),
      valueInfo: [],
    },
  };
  return { model, inputs: inputList };
}

/** ∂S/∂logits from ∂S/∂p, for p = softmax over axis 1 (computed stably, any opset) or sigmoid. */
function probabilityVjp(c: VjpContext, logits: string, w: string, kind: 'softmax' | 'sigmoid'): string {
  if (kind === 'sigmoid') return sigmoidVjp(c, c.op('Sigmoid', [logits]), w);
  const max =
    c.opset >= 18
      ? c.op('ReduceMax', [logits, c.i64([1])], { keepdims: { i: 1 } })
      : c.op('ReduceMax', [logits], { axes: { ints: [1] }, keepdims: { i: 1 } });
  const e = c.op('Exp', [c.op('Sub', [logits, max])]);
  const p = c.op('Div', [e, c.reduceSum(e, [1], 1)]);
  return softmaxVjp(c, p, w, [1]);
}

/** Refuses a graph whose emitted ops need a newer default opset than the model imports (raising it could change other ops' meaning). */
function ensureOpset(model: ModelProto, min: number) {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!entry || (entry.version ?? 1) >= min) return;
  throw new SegGradCamError(`internal error: the gradient graph needs opset ${min} but the model has ${entry.version}`, 'model');
}
