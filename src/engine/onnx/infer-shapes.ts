/**
 * Every node output's shape and element type without running the model (see docs/onnx.md,
 * "Loading"): what ./probe.ts measured with a full-size run, read from ONNX Runtime's own shape
 * inference instead, which it performs when it compiles a session.
 *
 * ONNX shape inference alone leaves the shapes behind shape arithmetic unknown (a Resize whose
 * `sizes` come from Shape → Slice → Concat, PyTorch's `F.interpolate(x, size=y.shape[2:])`). So
 * this alternates two steps until every shape is known:
 *  - infer: compile (never run) a session of the model with every unknown tensor as an output and
 *    read the shapes ONNX Runtime reports for them; weights are graph inputs of their declared
 *    shape there (no data copied), the shape-arithmetic values found so far are initializers;
 *  - evaluate: the shape arithmetic whose inputs are known (a Shape of a tensor whose shape is
 *    known is a constant; the rest runs in a small session of those nodes alone).
 * Tensors that do not depend on the input data and have at most SMALL elements get their values,
 * as the probe gave them (GraphAnalysis reads them as constants). Null when a shape stays unknown
 * (an op whose output shape depends on data, a sequence): the caller then probes.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import { ORT_TYPES, type ProbedTensor } from './analysis.js';
import { attrInt, valueInfo } from './builder.js';
import { DEFAULT_SESSION_OPTIONS, type OrtRuntime } from './options.js';
import { DataType, encodeModel, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { int64Tensor } from './tensor.js';

/** Values kept for tensors of at most this many elements (as ./probe.ts). */
const SMALL = 64;
/** Shape arithmetic is evaluated only on tensors of at most this many elements. */
const EVALUATE_MAX = 4096;
/** Initializers of more elements are graph inputs in the inference session (their values never set a shape). */
const KEEP_INITIALIZER = 1024;
const MAX_ROUNDS = 64;

interface Value {
  dims: number[];
  dataType: number;
  tensor: TensorProto;
  numbers: number[];
}

/** Counters a test reads (how many sessions were compiled, how many of them ran). */
export const inferenceStats = { compiled: 0, ran: 0 };

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const declared = (t: TensorProto) => valueInfo(t.name ?? '', t.dataType ?? DataType.FLOAT, (t.dims ?? []).map(Number));

/**
 * Shapes, element types and small shape-arithmetic values of `tensors` (node outputs of `model`)
 * for an input of `dims`; null when ONNX Runtime cannot tell them all without running the model.
 */
export async function inferShapes(
  ort: OrtRuntime,
  model: ModelProto,
  tensors: string[],
  inputName: string,
  dims: number[],
): Promise<Map<string, ProbedTensor> | null> {
  const g = model.graph;
  const inits = new Map<string, TensorProto>(g.initializer.map((t) => [t.name ?? '', t]));
  // Tensors whose values depend on the input data (Shape and Size cut the dependence).
  const dataDependent = new Set<string>([inputName]);
  for (const n of g.node) {
    if (n.opType === 'Shape' || n.opType === 'Size') continue;
    if (n.input.some((i) => dataDependent.has(i))) for (const o of n.output) if (o) dataDependent.add(o);
  }
  const known = new Map<string, ProbedTensor>([[inputName, { dims, dataType: DataType.FLOAT }]]);
  for (const [name, t] of inits) known.set(name, { dims: (t.dims ?? []).map(Number), dataType: t.dataType ?? DataType.FLOAT });
  const values = new Map<string, Value>();

  // Weights as typed graph inputs: the inference session copies no weight data.
  const heavy = g.initializer.filter((t) => count((t.dims ?? []).map(Number)) > KEEP_INITIALIZER);
  const heavyNames = new Set(heavy.map((t) => t.name ?? ''));
  const oldIr = (model.irVersion ?? 8) < 4;
  const light = g.initializer.filter((t) => !heavyNames.has(t.name ?? ''));
  const input: ValueInfoProto[] = [
    valueInfo(inputName, DataType.FLOAT, dims),
    ...heavy.map(declared),
    // Before IR version 4 every initializer is also a graph input.
    ...(oldIr ? light.map(declared) : []),
  ];

  for (let round = 0; round < MAX_ROUNDS; round++) {
    let progress = false;
    // Infer: the tensors of unknown shape as outputs of a compiled (never run) session.
    const unknown = tensors.filter((t) => !known.has(t));
    if (unknown.length === 0) break;
    // Shape(T) beside each T: ONNX Runtime reports an unknown rank and a scalar alike (an empty
    // shape), the rank as Shape's output length tells them apart.
    const rank = (i: number) => `sgc/infer/rank/${i}`;
    const node = [
      ...g.node.filter((n) => !n.output.every((o) => !o || values.has(o))),
      ...unknown.map((t, i): NodeProto => ({ opType: 'Shape', name: rank(i), input: [t], output: [rank(i)], attribute: [] })),
    ];
    const session = await compile(
      ort,
      encodeModel({
        ...model,
        graph: {
          ...g,
          node,
          input,
          initializer: [...light, ...[...values.values()].map((v) => v.tensor)],
          output: [...unknown, ...unknown.map((_, i) => rank(i))].map((name) => ({ name })),
          valueInfo: [],
        },
      }),
    );
    if (!session) return null;
    try {
      // Absent before ONNX Runtime 1.22 (onnxruntime-web included): the caller probes.
      const metadata = session.outputMetadata as readonly InferenceSession.ValueMetadata[] | undefined;
      if (!metadata) return null;
      const byName = new Map(metadata.map((md) => [md.name, md]));
      for (const [i, t] of unknown.entries()) {
        const md = byName.get(t);
        const r = byName.get(rank(i));
        if (!md?.isTensor || !r?.isTensor) return null;
        const shape = md.shape;
        const dataType = ORT_TYPES[md.type];
        if (dataType === undefined || !shape.every((d): d is number => typeof d === 'number' && d >= 0)) continue;
        // An empty shape is a scalar only when the rank is known to be 0.
        if (shape.length === 0 && !(r.shape.length === 1 && r.shape[0] === 0)) continue;
        known.set(t, { dims: [...shape], dataType });
        progress = true;
      }
    } finally {
      await session.release();
    }

    // Evaluate: shape arithmetic whose inputs are known.
    const available = (i: string) => !i || values.has(i) || inits.has(i);
    const batch: NodeProto[] = [];
    const inBatch = new Set<string>();
    for (const n of g.node) {
      const outs = n.output.filter(Boolean);
      if (outs.length === 0 || outs.every((o) => values.has(o)) || outs.some((o) => dataDependent.has(o))) continue;
      if (!outs.every((o) => known.has(o) && count(known.get(o)?.dims ?? []) <= EVALUATE_MAX)) continue;
      if (n.opType === 'Shape' || n.opType === 'Size') {
        const of = known.get(n.input[0]);
        if (!of) continue;
        const v = n.opType === 'Size' ? [count(of.dims)] : shapeSlice(n, of.dims);
        const d = n.opType === 'Size' ? [] : [v.length];
        values.set(n.output[0], { dims: d, dataType: DataType.INT64, tensor: int64Tensor(n.output[0], d, v), numbers: v });
        progress = true;
        continue;
      }
      if (!n.input.every((i) => available(i) || inBatch.has(i))) continue;
      batch.push(n);
      for (const o of outs) inBatch.add(o);
    }
    if (batch.length > 0) {
      const used = new Set(batch.flatMap((n) => n.input));
      const outputs = batch.flatMap((n) => n.output.filter(Boolean));
      const res = await evaluate(ort, model, {
        node: batch,
        initializer: [
          ...g.initializer.filter((t) => used.has(t.name ?? '')),
          ...[...values.values()].filter((v) => used.has(v.tensor.name ?? '')).map((v) => v.tensor),
        ],
        output: outputs,
      });
      if (!res) return null;
      for (const o of outputs) {
        const t = res[o];
        const dataType = ORT_TYPES[t.type];
        if (dataType === undefined || dataType === DataType.STRING) return null;
        const data = t.data as ArrayLike<number | bigint> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
        values.set(o, {
          dims: [...t.dims],
          dataType,
          tensor: {
            name: o,
            dims: [...t.dims],
            dataType,
            rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
          },
          numbers: Array.from(data, Number),
        });
      }
      progress = true;
    }
    if (!progress) break;
  }

  const out = new Map<string, ProbedTensor>();
  for (const t of tensors) {
    const k = known.get(t);
    if (!k) return null;
    const entry: ProbedTensor = { dims: k.dims, dataType: k.dataType };
    if (!dataDependent.has(t) && count(k.dims) <= SMALL && k.dataType !== DataType.STRING) {
      const v = values.get(t) ?? (inits.has(t) ? undefined : null);
      // A small shape-arithmetic tensor left unevaluated: the probe would have given its values.
      if (v === null) return null;
      if (v) entry.values = v.numbers;
    }
    out.set(t, entry);
  }
  return out;
}

/** Shape's output for an input of `dims` (its start and end attributes, opset 15). */
function shapeSlice(n: NodeProto, dims: number[]): number[] {
  const r = dims.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  return dims.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r)));
}

/** Runs a graph of constants only (no inputs) and returns its outputs; null when ONNX Runtime refuses it. */
async function evaluate(
  ort: OrtRuntime,
  model: ModelProto,
  graph: { node: NodeProto[]; initializer: TensorProto[]; output: string[] },
): Promise<Record<string, OrtTensor> | null> {
  const session = await compile(
    ort,
    encodeModel({
      ...model,
      graph: {
        name: 'sgc_shape_arithmetic',
        ...graph,
        input: (model.irVersion ?? 8) < 4 ? graph.initializer.map(declared) : [],
        output: graph.output.map((name) => ({ name })),
        valueInfo: [],
      },
    }),
  );
  if (!session) return null;
  try {
    const res = await session.run({}).catch(() => null);
    inferenceStats.ran++;
    return res as Record<string, OrtTensor> | null;
  } finally {
    await session.release();
  }
}

/** A session of an inference or arithmetic graph (no optimisation: the graph is read, not run fast); null when ONNX Runtime refuses it. */
async function compile(ort: OrtRuntime, bytes: Uint8Array): Promise<InferenceSession | null> {
  const session = await ort.InferenceSession.create(bytes, { ...DEFAULT_SESSION_OPTIONS, graphOptimizationLevel: 'disabled' }).catch(
    () => null,
  );
  if (session) inferenceStats.compiled++;
  return session;
}
