/**
 * What loading an ONNX file does before anything looks at its graph (see docs/onnx.md, "Loading"):
 *
 *  - sortGraph: nodes in topological order. ONNX Runtime runs files whose nodes are out of order
 *    (exporters and converters write such files; `onnx.checker` refuses them), so the project sorts
 *    them; a real cycle or a tensor nobody produces is a typed error naming the node.
 *  - dequantise: the float graph behind a quantised model (straight-through): a dynamic
 *    quantisation chain DynamicQuantizeLinear → ConvInteger/MatMulInteger → Cast → Mul(scale) is
 *    read as the float Conv/MatMul with the dequantised weights, a constant DequantizeLinear as its
 *    float weights, QuantizeLinear → DequantizeLinear as the identity.
 *  - widenFloats: float16/bfloat16 weights, constants and Casts widened to float32 (exact: every
 *    float16 and bfloat16 value is a float32), so the forward and gradient graphs run in float32
 *    on the model's own (rounded) weights.
 *
 * The graph these give is the one explained; `predict` runs the sorted file as it is.
 */
import { SegGradCamError } from '../../errors.js';
import { attrInt, nodeLabel } from './builder.js';
import {
  AttributeType,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { floatTensor, readTensor } from './tensor.js';

/** bfloat16's TensorProto.DataType (not in ./proto.ts's short list). */
export const BFLOAT16 = 16;

/**
 * The graph's nodes in topological order (the file's order kept where it already is one: Kahn's
 * algorithm taking the earliest ready node). Throws a 'model' error naming a node that reads a
 * tensor no node, input or initializer gives, or a node on a cycle.
 */
export function sortGraph(graph: GraphProto): NodeProto[] {
  const nodes = graph.node;
  const available = new Set<string>(['', ...graph.initializer.map((t) => t.name ?? ''), ...graph.input.map((i) => i.name)]);
  const producer = new Map<string, number>();
  nodes.forEach((n, k) => {
    for (const o of n.output) if (o) producer.set(o, k);
  });
  const waiting = new Array<number>(nodes.length).fill(0);
  const readers = new Map<string, number[]>();
  nodes.forEach((n, k) => {
    const seen = new Set<string>();
    for (const i of n.input) {
      if (available.has(i) || seen.has(i)) continue;
      seen.add(i);
      if (!producer.has(i))
        throw new SegGradCamError(
          `node '${nodeLabel(n)}' (${n.opType}) reads '${i}', which no node, input or initializer of the graph gives`,
          'model',
        );
      waiting[k]++;
      const list = readers.get(i);
      if (list) list.push(k);
      else readers.set(i, [k]);
    }
  });
  // A min-heap of ready node indices keeps the file's order among ready nodes.
  const heap: number[] = [];
  const push = (k: number) => {
    heap.push(k);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p] <= heap[i]) break;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop() as number;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  waiting.forEach((w, k) => {
    if (w === 0) push(k);
  });
  const order: NodeProto[] = [];
  while (heap.length > 0) {
    const k = pop();
    order.push(nodes[k]);
    for (const o of nodes[k].output) {
      if (!o) continue;
      for (const r of readers.get(o) ?? []) if (--waiting[r] === 0) push(r);
      readers.delete(o);
    }
  }
  if (order.length < nodes.length) {
    const stuck = nodes.find((_, k) => waiting[k] > 0) as NodeProto;
    const missing = stuck.input.find((i) => !available.has(i) && !order.some((n) => n.output.includes(i))) ?? '?';
    throw new SegGradCamError(
      `node '${nodeLabel(stuck)}' (${stuck.opType}) is on a cycle: it reads '${missing}', which depends on its own output`,
      'model',
    );
  }
  return order;
}

/** Floats that widen exactly to float32. */
const isNarrowFloat = (t: number | undefined) => t === DataType.FLOAT16 || t === BFLOAT16;

/** float16 bit patterns to float32 values, all 65,536 of them (built on first use). */
let halfTable: Float32Array | null = null;

function halves(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * 2 ** -14 * (m / 1024) : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
  }
  return (halfTable = t);
}

/** The raw little-endian bytes of `count` elements of `size` bytes, in a buffer of their own (aligned). */
function rawCopy(t: TensorProto, count: number, size: number): ArrayBuffer | null {
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  if (!raw || raw.byteLength < count * size) return null;
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * size) as ArrayBuffer;
}

/**
 * A tensor's values as a typed array, reading raw float16/float32/int8/uint8 data in bulk (the
 * per-element reader took about 1 µs an element: a minute for ISNet's 44 M float16 weights);
 * other encodings through readTensor.
 */
export function tensorValues(t: TensorProto): { dims: number[]; data: ArrayLike<number> } {
  const dims = (t.dims ?? []).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataType === DataType.FLOAT16) {
    const raw = rawCopy(t, count, 2);
    if (raw) {
      const bits = new Uint16Array(raw);
      const table = halves();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[bits[i]];
      return { dims, data: out };
    }
  }
  const raw =
    t.dataType === DataType.FLOAT
      ? rawCopy(t, count, 4)
      : t.dataType === DataType.INT8 || t.dataType === DataType.UINT8
        ? rawCopy(t, count, 1)
        : null;
  if (raw)
    return {
      dims,
      data: t.dataType === DataType.FLOAT ? new Float32Array(raw) : t.dataType === DataType.INT8 ? new Int8Array(raw) : new Uint8Array(raw),
    };
  const v = readTensor(t);
  return { dims: v.dims, data: v.data };
}

/** A float32 TensorProto holding these values (no copy). */
function floatProto(name: string, dims: number[], values: Float32Array): TensorProto {
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function widenTensor(t: TensorProto): TensorProto {
  if (!isNarrowFloat(t.dataType)) return t;
  const dims = (t.dims ?? []).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  let values: Float32Array;
  if (t.dataType === BFLOAT16) {
    // bfloat16 is the upper half of a float32.
    values = new Float32Array(count);
    const bits = new Uint32Array(values.buffer);
    const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
    const dv = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
    for (let i = 0; i < count; i++) bits[i] = (dv ? dv.getUint16(2 * i, true) : (t.int32Data?.[i] ?? 0) & 0xffff) << 16;
  } else {
    const d = tensorValues(t).data;
    values = d instanceof Float32Array ? d : Float32Array.from(d);
  }
  return floatProto(t.name ?? '', dims, values);
}

function widenValueInfo(v: ValueInfoProto): ValueInfoProto {
  const tt = v.type?.tensorType;
  if (!tt || !isNarrowFloat(tt.elemType)) return v;
  return { ...v, type: { ...v.type, tensorType: { ...tt, elemType: DataType.FLOAT } } };
}

/** Type attributes that name an element type (Cast's `to`, EyeLike/Random*'s `dtype`). */
const TYPE_ATTRS = new Set(['to', 'dtype']);

function widenNode(n: NodeProto): NodeProto {
  let changed = false;
  const attribute = n.attribute.map((a) => {
    if (a.type === AttributeType.INT && TYPE_ATTRS.has(a.name) && isNarrowFloat(Number(a.i))) {
      changed = true;
      return { ...a, i: DataType.FLOAT };
    }
    if (a.type === AttributeType.TENSOR && a.t && isNarrowFloat(a.t.dataType)) {
      changed = true;
      return { ...a, t: widenTensor(a.t) };
    }
    return a;
  });
  return changed ? { ...n, attribute } : n;
}

/** True when the model holds float16 or bfloat16 tensors, Casts or declared values. */
export function hasNarrowFloats(model: ModelProto): boolean {
  const g = model.graph;
  return (
    g.initializer.some((t) => isNarrowFloat(t.dataType)) ||
    [...g.input, ...g.output, ...(g.valueInfo ?? [])].some((v) => isNarrowFloat(v.type?.tensorType?.elemType)) ||
    g.node.some((n) => widenNode(n) !== n)
  );
}

/** The model with every float16/bfloat16 initializer, constant, Cast target and declared type widened to float32. */
export function widenFloats(model: ModelProto): ModelProto {
  const g = model.graph;
  return {
    ...model,
    graph: {
      ...g,
      node: g.node.map(widenNode),
      initializer: g.initializer.map(widenTensor),
      input: g.input.map(widenValueInfo),
      output: g.output.map(widenValueInfo),
      valueInfo: (g.valueInfo ?? []).map(widenValueInfo),
    },
  };
}

/** Quantisation ops the straight-through rewrite reads (anything else quantised is refused by the gradient builder, naming it). */
export const QUANTISED_OPS = new Set([
  'DynamicQuantizeLinear',
  'ConvInteger',
  'MatMulInteger',
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'QLinearMul',
  'QAttention',
  'DynamicQuantizeMatMul',
]);

export interface Dequantised {
  model: ModelProto;
  /** Rewrites made, by pattern (empty when the model is not quantised). */
  rewrites: Record<string, number>;
  /** Quantised ops left as they are (no straight-through rule): explaining through them is refused. */
  left: string[];
}

/**
 * The float graph behind a quantised model, straight-through (see the file comment). Nodes must be
 * in topological order. Nodes left unused by the rewrites are dropped.
 */
export function dequantise(model: ModelProto): Dequantised {
  const g = model.graph;
  const rewrites: Record<string, number> = {};
  const count = (k: string) => (rewrites[k] = (rewrites[k] ?? 0) + 1);
  if (!g.node.some((n) => QUANTISED_OPS.has(n.opType))) return { model, rewrites, left: [] };
  const inits = new Map<string, TensorProto>(g.initializer.map((t) => [t.name ?? '', t]));
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const o of n.output) if (o) producer.set(o, n);
    for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const constant = (name: string | undefined): { dims: number[]; data: ArrayLike<number> } | null => {
    if (!name) return null;
    const t = inits.get(name);
    if (t) return tensorValues(t);
    const p = producer.get(name);
    if (p?.opType === 'Constant') {
      const a = p.attribute.find((x) => x.name === 'value')?.t;
      if (a) return tensorValues(a);
    }
    return null;
  };
  const only = (t: string): NodeProto | null => {
    const c = consumers.get(t) ?? [];
    return c.length === 1 ? c[0] : null;
  };
  const replaced = new Map<NodeProto, NodeProto[]>();
  const removed = new Set<NodeProto>();
  const added: TensorProto[] = [];
  let fresh = 0;
  const freshName = (base: string) => {
    let n = `${base}_dequantised`;
    while (producer.has(n) || inits.has(n)) n = `${base}_dequantised_${++fresh}`;
    inits.set(n, {} as TensorProto);
    return n;
  };

  for (const n of g.node) {
    if (n.opType === 'ConvInteger' || n.opType === 'MatMulInteger') {
      // DynamicQuantizeLinear(x) → op(xq, Wq, x_zp, W_zp) → Cast → Mul(·, x_scale · W_scale)
      const q = producer.get(n.input[0]);
      const wq = constant(n.input[1]);
      const wzp = constant(n.input[3]) ?? { dims: [], data: [0] };
      const cast = only(n.output[0]);
      const mul = cast?.opType === 'Cast' ? only(cast.output[0]) : null;
      if (q?.opType !== 'DynamicQuantizeLinear' || q.output[0] !== n.input[0] || !wq || !cast || mul?.opType !== 'Mul') continue;
      const scaleName = mul.input[0] === cast.output[0] ? mul.input[1] : mul.input[0];
      const scaleNode = producer.get(scaleName);
      if (scaleNode?.opType !== 'Mul' || !scaleNode.input.includes(q.output[1])) continue;
      const ws = constant(scaleNode.input[0] === q.output[1] ? scaleNode.input[1] : scaleNode.input[0]);
      if (!ws) continue;
      const conv = n.opType === 'ConvInteger';
      // Per-tensor scale, or one per output channel (axis 0 of a Conv weight, the last axis of a MatMul weight).
      const axisLen = conv ? wq.dims[0] : wq.dims[wq.dims.length - 1];
      const perChannel = ws.data.length > 1;
      if (perChannel && ws.data.length !== axisLen) continue;
      const inner = wq.data.length / (wq.dims[0] || 1);
      const w = new Float32Array(wq.data.length);
      for (let i = 0; i < w.length; i++) {
        const ch = !perChannel ? 0 : conv ? Math.floor(i / inner) : i % axisLen;
        const zp = wzp.data.length > 1 ? wzp.data[ch] : wzp.data[0];
        w[i] = (wq.data[i] - zp) * ws.data[ch];
      }
      const wName = freshName(n.input[1]);
      added.push(floatProto(wName, wq.dims, w));
      const input = [q.input[0], wName];
      let output = mul.output[0];
      // A Conv's bias added after the rescale goes back into the Conv (one layer, as in the float file).
      const add = conv ? only(mul.output[0]) : null;
      if (add?.opType === 'Add') {
        const biasName = add.input[0] === mul.output[0] ? add.input[1] : add.input[0];
        const bias = constant(biasName);
        if (bias && bias.data.length === wq.dims[0] && bias.dims.filter((d) => d !== 1).length <= 1) {
          const bName = freshName(biasName);
          added.push(floatTensor(bName, [bias.data.length], bias.data));
          input.push(bName);
          output = add.output[0];
          removed.add(add);
        }
      }
      const floatOp: NodeProto = {
        ...n,
        opType: conv ? 'Conv' : 'MatMul',
        domain: '',
        input,
        output: [output],
        attribute: conv ? n.attribute : [],
      };
      replaced.set(n, [floatOp]);
      removed.add(cast);
      removed.add(mul);
      count(`DynamicQuantizeLinear → ${n.opType} → Cast → Mul`);
    } else if (n.opType === 'DequantizeLinear') {
      const x = constant(n.input[0]);
      const s = constant(n.input[1]);
      const zp = constant(n.input[2]) ?? { dims: [], data: [0] };
      if (x && s) {
        // Constant weights: their float values (per tensor, or per channel along `axis`).
        const rank = x.dims.length;
        let axis = attrInt(n, 'axis', 1);
        if (axis < 0) axis += rank;
        const stride = x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        const w = new Float32Array(x.data.length);
        for (let i = 0; i < w.length; i++) {
          const ch = s.data.length > 1 ? Math.floor(i / stride) % x.dims[axis] : 0;
          w[i] = (x.data[i] - (zp.data.length > 1 ? zp.data[ch] : zp.data[0])) * s.data[ch];
        }
        added.push(floatProto(n.output[0], x.dims, w));
        replaced.set(n, []);
        count('DequantizeLinear of a constant');
        continue;
      }
      const q = producer.get(n.input[0]);
      if (q?.opType === 'QuantizeLinear' && q.output[0] === n.input[0]) {
        // Fake quantisation of an activation: the identity (straight-through).
        replaced.set(n, [{ ...n, opType: 'Identity', domain: '', input: [q.input[0]], attribute: [] }]);
        count('QuantizeLinear → DequantizeLinear');
      }
    }
  }
  if (Object.keys(rewrites).length === 0) {
    return { model, rewrites, left: [...new Set(g.node.filter((n) => QUANTISED_OPS.has(n.opType)).map((n) => n.opType))] };
  }
  let node = g.node.flatMap((n) => (removed.has(n) ? [] : (replaced.get(n) ?? [n])));
  // Drop what the rewrites left unused (the quantisers, the scale products).
  const outputs = new Set(g.output.map((o) => o.name));
  for (;;) {
    const used = new Set<string>([...outputs, ...node.flatMap((n) => n.input)]);
    const kept = node.filter((n) => n.output.some((o) => o && used.has(o)));
    if (kept.length === node.length) break;
    node = kept;
  }
  const used = new Set(node.flatMap((n) => n.input));
  const initializer = [...g.initializer, ...added].filter((t) => used.has(t.name ?? ''));
  const left = [...new Set(node.filter((n) => QUANTISED_OPS.has(n.opType)).map((n) => n.opType))];
  return { model: { ...model, graph: { ...g, node, initializer } }, rewrites, left };
}
