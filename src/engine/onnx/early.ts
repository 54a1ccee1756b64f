/**
 * The parts of a backward pass that read only forward tensors (a ReLU's `y > 0`, a max pool's
 * argmax indices, a window cut from a map) run as soon as those tensors exist, so what the
 * backward part keeps through the rest of the forward run is their result (a bool mask: a quarter
 * of the float map) instead of the float map itself. At 1024² this is most of a fused run's extra
 * memory, and at a first run memory costs time (docs/onnx.md).
 *
 * ONNX Runtime orders a graph by a depth-first walk back from its leaf nodes (nodes whose outputs
 * no node reads), the highest node index first, and it does not follow the node list. So each
 * such result gets a leaf that reads one element of it, appended so that the result the forward
 * part reaches first has the highest index: the walk then emits the forward part up to it, the
 * result, and so on. The leaves are graph outputs (one element each) so that they are kept.
 */
import { valueInfo, type GraphBuilder } from './builder.js';
import { DataType } from './proto.js';

/** Outputs named so are the early leaves (one element each): callers may ignore them. */
export const EARLY_PREFIX = 'sgc/early_';
export const isEarlyOutput = (name: string): boolean => name.startsWith(EARLY_PREFIX);

/** Ops whose result is no larger than what they read (a mask, indices, a window, a view), and its element type. */
const SHRINKING: Record<string, 'bool' | 'int64' | 'same'> = {
  Greater: 'bool',
  Less: 'bool',
  GreaterOrEqual: 'bool',
  LessOrEqual: 'bool',
  Equal: 'bool',
  Not: 'bool',
  And: 'bool',
  Or: 'bool',
  MaxPool: 'int64',
  Reshape: 'same',
  Slice: 'same',
  Identity: 'same',
  Squeeze: 'same',
  Unsqueeze: 'same',
  Flatten: 'same',
};

/**
 * Adds the early leaves to the builder's graph, whose backward nodes start at `firstBackward`:
 * `cotangent` is the input the backward part starts from; `forwardType(t)` the element type of a
 * forward tensor, or undefined for one that does not depend on the data. Returns the leaves'
 * output names.
 */
export function scheduleEarly(
  b: GraphBuilder,
  firstBackward: number,
  cotangent: string,
  forwardType: (t: string) => number | undefined,
): string[] {
  const graph = b.graph;
  const position = new Map<string, number>();
  graph.node.slice(0, firstBackward).forEach((n, i) => n.output.forEach((o) => o && position.set(o, i)));
  // Backward nodes computable from forward tensors alone, with their element types and the last forward node they wait for.
  const early = new Map<string, { type: number; after: number }>();
  const late = new Set<string>([cotangent]);
  const frontier = new Set<string>();
  for (const n of graph.node.slice(firstBackward)) {
    if (n.input.some((i) => late.has(i))) {
      for (const o of n.output) if (o) late.add(o);
      for (const i of n.input) if (early.has(i)) frontier.add(i);
      continue;
    }
    const reads = n.input.filter((i) => i && (early.has(i) || forwardType(i) !== undefined));
    const kind = SHRINKING[n.opType];
    if (reads.length === 0) continue;
    if (!kind) {
      // It reads forward data but its result may be larger: it stays where the backward part needs it.
      for (const o of n.output) if (o) late.add(o);
      continue;
    }
    const after = Math.max(...reads.map((i) => early.get(i)?.after ?? position.get(i) ?? -1));
    const inType = early.get(n.input[0])?.type ?? forwardType(n.input[0]) ?? DataType.FLOAT;
    const out = n.opType === 'MaxPool' ? n.output[1] : n.output[0];
    if (out) early.set(out, { type: kind === 'bool' ? DataType.BOOL : kind === 'int64' ? DataType.INT64 : inType, after });
    for (const o of n.output) if (o && o !== out) late.add(o);
  }
  // The result reached first gets the highest index: appended last.
  const order = [...frontier].sort((x, y) => (early.get(y)?.after ?? 0) - (early.get(x)?.after ?? 0));
  if (order.length === 0) return [];
  const zero = b.ints('early_zero', [0]);
  const one = b.ints('early_one', [1]);
  return order.map((t, k) => {
    const name = b.claim(`${EARLY_PREFIX}${k}`);
    b.node('Slice', [b.op('Flatten', [t], { axis: { i: 0 } }), zero, one, one], {}, [name], `early_${k}`);
    b.graph.output.push(valueInfo(name, (early.get(t) as { type: number }).type, [1, 1]));
    return name;
  });
}
