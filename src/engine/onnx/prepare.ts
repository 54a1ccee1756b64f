/**
 * From a decoded ONNX file to the graph the project explains (./load.ts does the rewrites), the
 * graph `predict` runs, and where the model's activation is. See docs/onnx.md, "Loading".
 */
import { SegGradCamError } from '../../errors.js';
import type { GraphAnalysis } from './analysis.js';
import { valueInfo } from './builder.js';
import { DataType, type ModelProto, type NodeProto } from './proto.js';
import { BFLOAT16, dequantise, hasNarrowFloats, sortGraph, widenFloats } from './load.js';

/** The one output of the predict graph: the logits as float32. */
export const PREDICT_OUTPUT = 'sgc/predict_logits';

export interface PreparedModel {
  /** The file with its nodes in topological order: what `predict` runs. */
  file: ModelProto;
  /** The graph explained: `file`, dequantised (straight-through) and widened to float32 where needed. */
  model: ModelProto;
  /** One sentence per way `model` differs from `file` (shown to users: the CLI's stderr, the JSON's notes). */
  notes: string[];
}

export function prepareModel(decoded: ModelProto): PreparedModel {
  const file: ModelProto = { ...decoded, graph: { ...decoded.graph, node: sortGraph(decoded.graph) } };
  const notes: string[] = [];
  let model = file;
  const dq = dequantise(model);
  if (Object.keys(dq.rewrites).length > 0) {
    model = dq.model;
    const what = Object.entries(dq.rewrites)
      .map(([k, n]) => `${n}× ${k}`)
      .join(', ');
    notes.push(
      `quantised model: explained by differentiating its dequantised float graph (straight-through: ${what} read as the float op with the dequantised weights); predict runs the quantised file`,
    );
  }
  if (hasNarrowFloats(model)) {
    model = widenFloats(model);
    notes.push(
      'float16/bfloat16 weights: the explanation is computed in float32 on the model’s own weights (widened exactly); predict runs the file as is',
    );
  }
  return { file, model, notes };
}

/** Ops an output activation may sit behind without changing what it is. */
const TRANSPARENT = new Set(['Cast', 'Identity', 'Reshape']);

/**
 * The final Sigmoid/Softmax producing `output`, looking through Cast/Identity/Reshape nodes (a
 * float16 model's `Sigmoid → Cast(float32)`); null when there is none.
 */
export function activationBehind(an: GraphAnalysis, output: string): NodeProto | null {
  let t = output;
  for (let hops = 0; hops < 16; hops++) {
    const p = an.producer.get(t);
    if (!p) return null;
    if (p.opType === 'Sigmoid' || p.opType === 'Softmax') {
      // Through a Reshape only when it keeps the element order per position (same shape up to size-1 axes).
      const a = an.shape(p.output[0]).filter((d) => d !== 1);
      const b = an.shape(output).filter((d) => d !== 1);
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) return null;
      return p;
    }
    if (!TRANSPARENT.has(p.opType)) return null;
    if (p.opType === 'Cast' && !an.isFloat(p.input[0])) return null;
    t = p.input[0];
  }
  return null;
}

/**
 * The file as is with one float32 output: the logits (cast when the file computes them in float16;
 * a narrow-float input is cast from the float32 the project feeds).
 */
export function predictModel(file: ModelProto, logits: string, an: GraphAnalysis): ModelProto {
  const g = file.graph;
  const node = [...g.node];
  const input = g.input.map((i) => {
    const el = i.type?.tensorType?.elemType;
    if (i.name !== an.inputName || (el !== DataType.FLOAT16 && el !== BFLOAT16)) return i;
    const narrow = `${i.name}/sgc_narrow`;
    for (let k = 0; k < node.length; k++)
      if (node[k].input.includes(i.name)) node[k] = { ...node[k], input: node[k].input.map((x) => (x === i.name ? narrow : x)) };
    node.unshift({
      name: 'sgc/input_cast',
      opType: 'Cast',
      input: [i.name],
      output: [narrow],
      attribute: [{ name: 'to', type: 2, i: el }],
    });
    return { ...i, type: { ...i.type, tensorType: { ...i.type?.tensorType, elemType: DataType.FLOAT } } };
  });
  node.push({
    name: 'sgc/predict_cast',
    opType: 'Cast',
    input: [logits],
    output: [PREDICT_OUTPUT],
    attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }],
  });
  return { ...file, graph: { ...g, node, input, output: [valueInfo(PREDICT_OUTPUT, DataType.FLOAT, an.shape(logits))], valueInfo: [] } };
}

/** An ONNX Runtime failure as a typed 'model' error (its message names the node). */
export function runtimeError(e: unknown, doing: string): SegGradCamError {
  if (e instanceof SegGradCamError) return e;
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
  return new SegGradCamError(`ONNX Runtime failed ${doing}: ${msg}`, 'model');
}
