/**
 * One run of a model on zeros with every node output exposed: the shape, element type and (for
 * small tensors: shape arithmetic) the values of every tensor. The graph analysis reads it.
 */
import { ORT_TYPES, type ProbedTensor } from './analysis.js';
import { DEFAULT_SESSION_OPTIONS, type OrtRuntime } from './options.js';
import { runtimeError } from './prepare.js';
import { DataType, encodeModel, type ModelProto } from './proto.js';

export async function probeShapes(
  ort: OrtRuntime,
  model: ModelProto,
  inputName: string,
  dims: number[],
): Promise<Map<string, ProbedTensor>> {
  const g = model.graph;
  const probeModel: ModelProto = { ...model, graph: { ...g, output: [...g.output], valueInfo: [] } };
  const declared = new Set(g.output.map((o) => o.name));
  for (const n of g.node) {
    for (const o of n.output) {
      if (!o || declared.has(o)) continue;
      declared.add(o);
      probeModel.graph.output.push({ name: o });
    }
  }
  const probe = new Map<string, ProbedTensor>();
  const session = await ort.InferenceSession.create(encodeModel(probeModel), {
    ...DEFAULT_SESSION_OPTIONS,
    graphOptimizationLevel: 'disabled',
  }).catch((e: unknown) => {
    throw runtimeError(e, 'loading the model');
  });
  try {
    const x = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    const res = await session.run({ [inputName]: x }).catch((e: unknown) => {
      throw runtimeError(e, 'running the model');
    });
    for (const [name, t] of Object.entries(res)) {
      const dataType = ORT_TYPES[t.type] ?? 0;
      const entry: ProbedTensor = { dims: [...t.dims], dataType };
      if (t.size <= 64 && dataType !== DataType.STRING) entry.values = Array.from(t.data as ArrayLike<number | bigint>, Number);
      probe.set(name, entry);
    }
  } finally {
    await session.release();
  }
  probe.set(inputName, { dims, dataType: DataType.FLOAT });
  return probe;
}
