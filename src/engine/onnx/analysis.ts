/**
 * What the project knows about an ONNX model's graph: node order, producers and consumers,
 * every tensor's shape and type, and the values of the tensors that do not depend on the input
 * data (initializers, Constant nodes, shape arithmetic).
 *
 * Models exported by torch.onnx.export carry no intermediate shapes and there is no ONNX shape
 * inference in JS, so shapes come from one probe run with every node output exposed as a graph
 * output. The probe also evaluates shape arithmetic (Shape → Gather → Unsqueeze → Concat …):
 * a tensor that depends on the input only through Shape/Size is a constant for a fixed input
 * size, and its probe value is kept. The analysis (and every graph built from it) is therefore
 * tied to the probe's input size.
 */
import { SegGradCamError } from '../../errors.js';
import { attrTensor, nodeLabel } from './builder.js';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from './proto.js';
import { isFloatType, readTensor, type ConstValue } from './tensor.js';

/** Element type names as onnxruntime reports them, to ONNX data types. */
export const ORT_TYPES: Record<string, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int16: DataType.INT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  uint16: DataType.UINT16,
  uint32: DataType.UINT32,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
  string: DataType.STRING,
};

export interface ProbedTensor {
  dims: number[];
  /** ONNX data type. */
  dataType: number;
  /** Values, kept only for small tensors that do not depend on the input data. */
  values?: number[];
}

/** Ops whose outputs do not depend on their inputs' values (only on shapes). */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Same-shape elementwise followers: a tensor consumed only by one of these is not a "layer" of its own. */
const FOLLOWERS = new Set([
  'Relu',
  'LeakyRelu',
  'Clip',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'BatchNormalization',
  'PRelu',
  'Elu',
  'Selu',
  'Softplus',
  'Mish',
  'Gelu',
  'Identity',
  'Dropout',
]);

const LAYOUT = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

/** Position-wise ops beyond FOLLOWERS (with one data input: a constant other operand). */
const POSITIONWISE = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Cast',
  'Reshape',
  'Transpose',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'LayerNormalization',
  'Softmax',
]);

export class GraphAnalysis {
  readonly nodes: NodeProto[];
  /** The node producing each tensor. */
  readonly producer = new Map<string, NodeProto>();
  /** The nodes reading each tensor. */
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly inputName: string;
  readonly outputName: string;
  readonly opset: number;
  /** Tensors whose values depend on the input data (not only on its shape). */
  readonly dataDependent = new Set<string>();
  private readonly constCache = new Map<string, ConstValue | null>();

  constructor(
    readonly model: ModelProto,
    readonly probe: Map<string, ProbedTensor>,
    options: { inputName: string; outputName: string; opset: number },
  ) {
    this.nodes = model.graph.node;
    this.inputName = options.inputName;
    this.outputName = options.outputName;
    this.opset = options.opset;
    for (const t of model.graph.initializer) if (t.name) this.initializers.set(t.name, t);
    for (const n of this.nodes) {
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const i of n.input) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) {
          if (!list.includes(n)) list.push(n);
        } else this.consumers.set(i, [n]);
      }
    }
    this.dataDependent.add(this.inputName);
    for (const n of this.nodes) {
      if (SHAPE_ONLY.has(n.opType)) continue;
      if (n.input.some((i) => this.dataDependent.has(i))) for (const o of n.output) if (o) this.dataDependent.add(o);
    }
  }

  shape(name: string): number[] {
    const p = this.probe.get(name);
    if (p) return p.dims;
    const init = this.initializers.get(name);
    if (init) return (init.dims ?? []).map(Number);
    const c = this.constant(name);
    if (c) return c.dims;
    throw new SegGradCamError(`no shape is known for tensor '${name}'`, 'model');
  }

  dataType(name: string): number | undefined {
    return this.probe.get(name)?.dataType ?? (this.initializers.has(name) ? this.constant(name)?.dataType : undefined);
  }

  isFloat(name: string): boolean {
    return isFloatType(this.dataType(name));
  }

  /**
   * The value of a tensor that does not depend on the input data: an initializer, a Constant
   * node's value, or a shape-arithmetic result from the probe. Null when it is not a constant.
   */
  constant(name: string): ConstValue | null {
    if (!name) return null;
    if (this.constCache.has(name)) return this.constCache.get(name) ?? null;
    let v: ConstValue | null = null;
    const init = this.initializers.get(name);
    if (init) v = readTensor(init);
    else {
      const node = this.producer.get(name);
      if (node?.opType === 'Constant') {
        const t = attrTensor(node, 'value');
        if (t) v = readTensor(t);
        else {
          const a = node.attribute[0];
          if (a?.name === 'value_float') v = { dims: [], dataType: DataType.FLOAT, data: Float32Array.of(a.f ?? 0) };
          else if (a?.name === 'value_floats')
            v = { dims: [a.floats?.length ?? 0], dataType: DataType.FLOAT, data: Float32Array.from(a.floats ?? []) };
          else if (a?.name === 'value_int') v = { dims: [], dataType: DataType.INT64, data: [Number(a.i ?? 0)] };
          else if (a?.name === 'value_ints')
            v = { dims: [a.ints?.length ?? 0], dataType: DataType.INT64, data: (a.ints ?? []).map(Number) };
        }
      } else if (!this.dataDependent.has(name)) {
        const p = this.probe.get(name);
        if (p?.values)
          v = { dims: p.dims, dataType: p.dataType, data: p.dataType === DataType.FLOAT ? Float32Array.from(p.values) : p.values };
      }
    }
    this.constCache.set(name, v);
    return v;
  }

  /** A constant's values as plain numbers (for scales, pads, sizes, bounds), or null. */
  numbers(name: string | undefined): number[] | null {
    if (!name) return null;
    const c = this.constant(name);
    return c ? Array.from(c.data) : null;
  }

  /**
   * The explainable layers: 4-D float node outputs that depend on the input, in node order.
   * A tensor consumed only by one same-shape follower (Conv → Relu, Conv → BatchNormalization)
   * is part of that layer, as in Keras where a Conv2D layer includes its activation — and
   * exposing it would stop ONNX Runtime from fusing the pair.
   */
  layerNames(logits = this.outputName): string[] {
    const out: string[] = [];
    const ancestors = this.ancestors(logits);
    for (const n of this.nodes) {
      for (const o of n.output) {
        if (!o || !this.dataDependent.has(o) || !this.isFloat(o) || !ancestors.has(o)) continue;
        const dims = this.probe.get(o)?.dims;
        if (!dims || dims.length !== 4) continue;
        if (o !== logits && this.isChainPrefix(o)) continue;
        // A float-to-float Cast repeats its input (a float16 model's Casts around Resize): not a layer of its own.
        if (o !== logits && n.opType === 'Cast' && this.isFloat(n.input[0])) continue;
        out.push(o);
      }
    }
    return out;
  }

  /** The tensor and every tensor it is computed from. */
  ancestors(tensor: string): Set<string> {
    const seen = new Set<string>();
    const stack = [tensor];
    while (stack.length > 0) {
      const t = stack.pop() as string;
      if (!t || seen.has(t)) continue;
      seen.add(t);
      const p = this.producer.get(t);
      if (p) for (const i of p.input) stack.push(i);
    }
    return seen;
  }

  /** True when the tensor's only reader is a same-shape elementwise follower. */
  isChainPrefix(name: string): boolean {
    const cons = this.consumers.get(name) ?? [];
    if (cons.length !== 1 || !FOLLOWERS.has(cons[0].opType)) return false;
    if (this.model.graph.output.some((o) => o.name === name)) return false;
    const next = cons[0].output[0];
    const a = this.probe.get(name)?.dims;
    const b = this.probe.get(next)?.dims;
    return !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);
  }

  /**
   * For each layer, the nearest layers (of `layers`, or the input) it is computed from, walking back
   * through the tensors that are not layers; `pointwise` when every op on the way is position-wise
   * with one data input (see POSITIONWISE) — the bottleneck choice reads this (../bottleneck.ts).
   */
  layerLinks(layers: string[]): Map<string, Array<{ name: string; pointwise: boolean }>> {
    const listed = new Set([...layers, this.inputName]);
    const out = new Map<string, Array<{ name: string; pointwise: boolean }>>();
    for (const layer of layers) {
      const found = new Map<string, boolean>();
      const seen = new Set<string>();
      const walk = (t: string, pointwise: boolean) => {
        const p = this.producer.get(t);
        if (!p || seen.has(t)) return;
        seen.add(t);
        const data = p.input.filter((i) => i && this.dataDependent.has(i));
        const pw = pointwise && data.length === 1 && this.isPositionwise(p);
        for (const i of data) {
          if (listed.has(i) && !this.isLayoutStep(i, listed)) found.set(i, (found.get(i) ?? true) && pw);
          else walk(i, pw);
        }
      };
      walk(layer, true);
      out.set(
        layer,
        [...found].map(([name, pointwise]) => ({ name, pointwise })),
      );
    }
    return out;
  }

  /** A layer whose only reader is a layout op (Reshape, Transpose…) giving another layer: the same data, one step of a layout change. */
  private isLayoutStep(t: string, listed: Set<string>): boolean {
    const cons = this.consumers.get(t) ?? [];
    return cons.length === 1 && LAYOUT.has(cons[0].opType) && listed.has(cons[0].output[0]);
  }

  /** An op that maps each position's values on their own (no spatial or token mixing). */
  private isPositionwise(n: NodeProto): boolean {
    if (POSITIONWISE.has(n.opType) || FOLLOWERS.has(n.opType)) return true;
    if (n.opType === 'Conv') {
      const k = this.probe.get(n.input[1])?.dims ?? this.initializers.get(n.input[1])?.dims?.map(Number) ?? [];
      const strides = n.attribute.find((a) => a.name === 'strides')?.ints?.map(Number) ?? [];
      return k.length > 2 && k.slice(2).every((d) => d === 1) && strides.every((s) => s === 1);
    }
    // A linear map of each token (the weights are constants).
    if (n.opType === 'MatMul' || n.opType === 'Gemm') return !this.dataDependent.has(n.input[1]);
    return false;
  }

  /** Nodes in execution order (checks that the file's order is topological). */
  ordered(): NodeProto[] {
    const known = new Set<string>([...this.initializers.keys(), ...this.model.graph.input.map((i) => i.name), '']);
    for (const n of this.nodes) {
      for (const i of n.input) {
        if (!known.has(i))
          throw new SegGradCamError(
            `node '${nodeLabel(n)}' reads '${i}' before it is produced: the graph is not in topological order`,
            'model',
          );
      }
      for (const o of n.output) known.add(o);
    }
    return this.nodes;
  }
}
