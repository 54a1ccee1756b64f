/**
 * One run of a model on zeros that reports every node output: the shape, element type and (for
 * small tensors: shape arithmetic) the values of every tensor. The graph analysis reads it.
 *
 * Every node output T gets two small probe outputs instead of being an output itself: Shape(T)
 * and the first 65 elements of T flattened (its element type, and all its values when it has at
 * most 64). ONNX Runtime then frees each activation after its last reader, as in a plain forward
 * run: exposing every node output kept all of them alive at once and copied them to JS (at
 * 1024x1024 a nested U-Net's probe peaked at several GB, docs/onnx.md). Files on which that
 * graph does not run (opset < 10, a sequence-typed output) are probed the old way.
 */
import type { InferenceSession } from 'onnxruntime-common';
import { ORT_TYPES, type ProbedTensor } from './analysis.js';
import { inferShapes } from './infer-shapes.js';
import { DEFAULT_SESSION_OPTIONS, type OrtRuntime } from './options.js';
import { runtimeError } from './prepare.js';
import { DataType, defaultOpset, encodeModel, type ModelProto, type NodeProto } from './proto.js';
import { int64Tensor } from './tensor.js';

/** Values read back for tensors of at most this many elements. */
const SMALL = 64;
const PREFIX = 'sgc/probe/';

export async function probeShapes(
  ort: OrtRuntime,
  model: ModelProto,
  inputName: string,
  dims: number[],
  how: 'infer' | 'probe' = 'infer',
): Promise<Map<string, ProbedTensor>> {
  const tensors = nodeOutputs(model);
  // ONNX Runtime's shape inference first: no run of the model at all (./infer-shapes.ts).
  const inferred = how === 'infer' ? await inferShapes(ort, model, tensors, inputName, dims).catch(() => null) : null;
  if (inferred) {
    inferred.set(inputName, { dims, dataType: DataType.FLOAT });
    return inferred;
  }
  return probeByRunning(ort, model, inputName, dims);
}

/** The same from one run of the model on zeros (the lean probe, or the full one where that does not run). */
export async function probeByRunning(
  ort: OrtRuntime,
  model: ModelProto,
  inputName: string,
  dims: number[],
): Promise<Map<string, ProbedTensor>> {
  const tensors = nodeOutputs(model);
  let probe: Map<string, ProbedTensor> | null = null;
  if (defaultOpset(model) >= 10) {
    try {
      probe = await leanProbe(ort, model, tensors, inputName, dims);
    } catch {
      // The probe graph does not run on this file: the full probe says why, if it fails too.
    }
  }
  probe ??= await fullProbe(ort, model, tensors, inputName, dims);
  probe.set(inputName, { dims, dataType: DataType.FLOAT });
  return probe;
}

/** Every node output, the graph's outputs first (as the full probe lists them). */
export function nodeOutputs(model: ModelProto): string[] {
  const g = model.graph;
  const names = new Set(g.output.map((o) => o.name));
  for (const n of g.node) for (const o of n.output) if (o) names.add(o);
  return [...names];
}

async function runProbe(ort: OrtRuntime, model: ModelProto, inputName: string, dims: number[]): Promise<InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(encodeModel(model), {
    ...DEFAULT_SESSION_OPTIONS,
    graphOptimizationLevel: 'disabled',
  }).catch((e: unknown) => {
    throw runtimeError(e, 'loading the model');
  });
  try {
    const x = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    return await session.run({ [inputName]: x }).catch((e: unknown) => {
      throw runtimeError(e, 'running the model');
    });
  } finally {
    await session.release();
  }
}

/** Shape(T) and T's first SMALL + 1 elements per tensor T (see the file comment). */
async function leanProbe(
  ort: OrtRuntime,
  model: ModelProto,
  tensors: string[],
  inputName: string,
  dims: number[],
): Promise<Map<string, ProbedTensor>> {
  const g = model.graph;
  const flat = `${PREFIX}flat`;
  const start = `${PREFIX}start`;
  const end = `${PREFIX}end`;
  const probes = new Map<string, NodeProto[]>();
  const outputs: Array<{ name: string }> = [];
  tensors.forEach((t, i) => {
    const [shape, line, head] = [`${PREFIX}shape/${i}`, `${PREFIX}line/${i}`, `${PREFIX}head/${i}`];
    probes.set(t, [
      { opType: 'Shape', name: shape, input: [t], output: [shape], attribute: [] },
      { opType: 'Reshape', name: line, input: [t, flat], output: [line], attribute: [] },
      { opType: 'Slice', name: head, input: [line, start, end], output: [head], attribute: [] },
    ]);
    outputs.push({ name: shape }, { name: head });
  });
  // The probes in reverse topological order, after the model's nodes. ONNX Runtime's default
  // execution order is a depth-first walk back from the graph's leaves, the last leaf in node order
  // first: so the first tensor's probe is reached first, runs right after its producer, and each
  // later tensor's probe right after its own. Probes in topological order (or the model's output's
  // first) put the whole model first, all activations alive until their probes ran.
  const produced = g.node.flatMap((n) => n.output).filter((o) => probes.has(o));
  // A graph output that no node produces (an input or initializer passed through) is probed too.
  const made = new Set(produced);
  const rest = tensors.filter((t) => !made.has(t));
  const node = [...g.node, ...[...rest, ...produced].reverse().flatMap((t) => probes.get(t) as NodeProto[])];
  const probeModel: ModelProto = {
    ...model,
    graph: {
      ...g,
      node,
      initializer: [...g.initializer, int64Tensor(flat, [1], [-1]), int64Tensor(start, [1], [0]), int64Tensor(end, [1], [SMALL + 1])],
      output: outputs,
      valueInfo: [],
    },
  };
  const res = await runProbe(ort, probeModel, inputName, dims);
  const probe = new Map<string, ProbedTensor>();
  tensors.forEach((t, i) => {
    const shape = res[`${PREFIX}shape/${i}`];
    const head = res[`${PREFIX}head/${i}`];
    const tdims = Array.from(shape.data as BigInt64Array, Number);
    const dataType = ORT_TYPES[head.type] ?? 0;
    const entry: ProbedTensor = { dims: tdims, dataType };
    const size = tdims.reduce((a, b) => a * b, 1);
    if (size <= SMALL && dataType !== DataType.STRING) entry.values = Array.from(head.data as ArrayLike<number | bigint>, Number);
    probe.set(t, entry);
  });
  return probe;
}

/** Every node output as a graph output (all of them alive at once, and copied to JS). */
async function fullProbe(
  ort: OrtRuntime,
  model: ModelProto,
  tensors: string[],
  inputName: string,
  dims: number[],
): Promise<Map<string, ProbedTensor>> {
  const g = model.graph;
  const declared = new Set(g.output.map((o) => o.name));
  const probeModel: ModelProto = {
    ...model,
    graph: { ...g, output: [...g.output, ...tensors.filter((t) => !declared.has(t)).map((name) => ({ name }))], valueInfo: [] },
  };
  const res = await runProbe(ort, probeModel, inputName, dims);
  const probe = new Map<string, ProbedTensor>();
  for (const [name, t] of Object.entries(res)) {
    const dataType = ORT_TYPES[t.type] ?? 0;
    const entry: ProbedTensor = { dims: [...t.dims], dataType };
    if (t.size <= SMALL && dataType !== DataType.STRING) entry.values = Array.from(t.data as ArrayLike<number | bigint>, Number);
    probe.set(name, entry);
  }
  return probe;
}
