/**
 * Small helpers to read node attributes and to append nodes and constants to an ONNX graph
 * (used by the gradient transform and by the project's own fixture models).
 */
import { SegGradCamError } from '../../errors.js';
import {
  AttributeType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { floatTensor, int64Tensor } from './tensor.js';

export type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string } | { t: TensorProto };

export function toAttribute(name: string, a: Attr): AttributeProto {
  if ('i' in a) return { name, type: AttributeType.INT, i: a.i };
  if ('f' in a) return { name, type: AttributeType.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: AttributeType.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: AttributeType.FLOATS, floats: a.floats };
  if ('s' in a) return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.s) };
  return { name, type: AttributeType.TENSOR, t: a.t };
}

const findAttr = (node: NodeProto, name: string) => node.attribute.find((a) => a.name === name);

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = findAttr(node, name);
  return a?.i != null ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = findAttr(node, name);
  return a?.f ?? fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a?.ints && (a.ints.length > 0 || a.type === AttributeType.INTS) ? a.ints.map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = findAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return findAttr(node, name)?.t;
}

/** A node's display name: its name, or its op and first output when it has none. */
export const nodeLabel = (node: NodeProto) => node.name || `${node.opType} → ${node.output[0] ?? '?'}`;

export const valueInfo = (name: string, elemType: number, dims?: Array<number | string>): ValueInfoProto => ({
  name,
  type: {
    tensorType: {
      elemType,
      ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
    },
  },
});

/** Appends nodes and constants to a graph under fresh names. */
export class GraphBuilder {
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(
    readonly graph: GraphProto,
    readonly prefix = '',
  ) {
    for (const n of graph.node) {
      if (n.name) this.used.add(n.name);
      for (const o of n.output) this.used.add(o);
      for (const i of n.input) this.used.add(i);
    }
    for (const t of graph.initializer) if (t.name) this.used.add(t.name);
    for (const v of graph.input) this.used.add(v.name);
    for (const v of graph.output) this.used.add(v.name);
  }

  fresh(base: string): string {
    let name = `${this.prefix}${base}`;
    while (this.used.has(name)) name = `${this.prefix}${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Reserves a name given by the caller (an input, an output). */
  claim(name: string): string {
    if (this.used.has(name)) throw new SegGradCamError(`the name '${name}' is already used in the graph`, 'model');
    this.used.add(name);
    return name;
  }

  /** Adds a node; returns its outputs (fresh names unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: number | string[] = 1, name?: string): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(`${opType.toLowerCase()}`)) : outputs;
    const node: NodeProto = {
      name: this.fresh(name ?? opType),
      opType,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    };
    this.graph.node.push(node);
    return outs;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, 1, name)[0];
  }

  initializer(t: TensorProto): string {
    this.graph.initializer.push(t);
    return t.name as string;
  }

  floats(base: string, dims: number[], values: ArrayLike<number>): string {
    return this.initializer(floatTensor(this.fresh(base), dims, values));
  }

  ints(base: string, values: number[], dims: number[] = [values.length]): string {
    return this.initializer(int64Tensor(this.fresh(base), dims, values));
  }

  scalar(base: string, value: number): string {
    return this.floats(base, [], [value]);
  }
}

/** An empty model with one default-domain opset. */
export function emptyModel(opset: number, name = 'graph'): ModelProto {
  return {
    irVersion: opset >= 15 ? 8 : 7,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'seg-grad-cam',
    graph: { node: [], name, initializer: [], input: [], output: [], valueInfo: [] },
  };
}
