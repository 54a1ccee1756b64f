/**
 * Cotangents computed inside the graph from its own logits, when the objective depends on the
 * prediction, so that a primed graph (forward and backward parts in one run) can still take it:
 *
 *  - `class-region`: S = Σ over the pixels predicted as class c of y^c (the class given). ∂S/∂logits
 *    is the prediction's mask of c on channel c (one sigmoid channel: +1 on the pixels with
 *    y > 0 for class 1, −1 on the others for class 0). The class is an input, the mask an output.
 *  - `class-of-region`: S over a region M known beforehand (a pixel, a box, a mask), for the class
 *    predicted most often inside M (the smallest on ties; one pixel: its class). M is an input,
 *    cropped like the cotangent it replaces (windowed graphs take it on their window); the class
 *    is an output.
 *
 * Either spares the forward run that would otherwise come first to find the region or the class.
 * The caller checks the graph's choice against the objective it computes from the same logits
 * (`seedMatches`) and falls back to a backward run when they differ (ties and NaNs).
 */
import type { Objective } from '../contract.js';
import { GraphBuilder, valueInfo } from './builder.js';
import { COTANGENT } from './gradient.js';
import { DataType, type GraphProto, type ModelProto } from './proto.js';

export type SeedKind = 'class-region' | 'class-of-region';

/** class-region: the class whose predicted region is M (int64 [1]). */
export const SEED_CLASS = 'sgc/seed_class';
/** class-region: whether each pixel is predicted as that class (bool [1, 1, H, W]). */
export const SEED_MASK = 'sgc/seed_mask';
/** class-of-region: M (float [1, 1, h, w], 0/1, cropped as the cotangent is). */
export const SEED_REGION = 'sgc/seed_region';
/** class-of-region: the class chosen (int64 [1, 1, 1, 1]). */
export const SEED_CHOSEN = 'sgc/seed_chosen';

/**
 * `model` (an augmented graph whose backward nodes start at `firstBackward`) with its cotangent
 * input replaced by nodes that compute it from `logits` ([1, C, H, W], float32); `crop`: the
 * window inputs (starts, ends on axes 2, 3) the cotangent is cut to, for a windowed graph.
 */
export function seededModel(
  model: ModelProto,
  firstBackward: number,
  logits: string,
  logitsShape: number[],
  kind: SeedKind,
  crop?: [string, string],
): ModelProto {
  const [, channels, h, w] = logitsShape;
  const scratch: GraphProto = { node: [], initializer: [], input: [], output: [], valueInfo: [] };
  const b = new GraphBuilder(scratch, 'sgc/seed/');
  const sigmoid = channels === 1;
  // Labels [1, 1, H, W] (int64): argmax over channels, or y > 0 for one sigmoid channel.
  let labels = sigmoid
    ? b.op('Cast', [b.op('Greater', [logits, b.scalar('zero', 0)])], { to: { i: DataType.INT64 } })
    : b.op('ArgMax', [logits], { axis: { i: 1 }, keepdims: { i: 1 } });
  const index = b.ints(
    'channels',
    Array.from({ length: Math.max(channels, 2) }, (_, i) => i),
    [1, Math.max(channels, 2), 1, 1],
  );
  const inputs = model.graph.input.filter((i) => i.name !== COTANGENT);
  const outputs = [...model.graph.output];
  // The cotangent along the channels for a class [1, 1, 1, 1] or [1]: its one-hot, or ±1 for one sigmoid channel.
  const along = (cls: string) =>
    sigmoid
      ? b.op('Sub', [b.op('Mul', [b.op('Cast', [cls], { to: { i: DataType.FLOAT } }), b.scalar('two', 2)]), b.scalar('one', 1)])
      : b.op('Cast', [b.op('Equal', [index, cls])], { to: { i: DataType.FLOAT } });
  b.claim(COTANGENT);
  if (kind === 'class-region') {
    b.claim(SEED_MASK);
    const [mask] = b.node('Equal', [labels, SEED_CLASS], {}, [SEED_MASK]);
    b.node('Mul', [b.op('Cast', [mask], { to: { i: DataType.FLOAT } }), along(SEED_CLASS)], {}, [COTANGENT]);
    inputs.push(valueInfo(SEED_CLASS, DataType.INT64, [1]));
    outputs.push(valueInfo(SEED_MASK, DataType.BOOL, [1, 1, h, w]));
  } else {
    if (crop) labels = b.op('Slice', [labels, crop[0], crop[1], b.ints('axes', [2, 3])]);
    // Pixels of M per class [1, C′, 1, 1] (C′ = 2 for one sigmoid channel); the first largest count wins.
    const hits = b.op('Mul', [b.op('Cast', [b.op('Equal', [labels, index])], { to: { i: DataType.FLOAT } }), SEED_REGION]);
    const counts = b.op('ReduceSum', [hits, b.ints('count_axes', [0, 2, 3])], { keepdims: { i: 1 } });
    b.claim(SEED_CHOSEN);
    const [cls] = b.node('ArgMax', [counts], { axis: { i: 1 }, keepdims: { i: 1 } }, [SEED_CHOSEN]);
    b.node('Mul', [SEED_REGION, along(cls)], {}, [COTANGENT]);
    inputs.push(valueInfo(SEED_REGION, DataType.FLOAT, [1, 1, crop ? 'window_h' : h, crop ? 'window_w' : w]));
    outputs.push(valueInfo(SEED_CHOSEN, DataType.INT64, [1, 1, 1, 1]));
  }
  const g = model.graph;
  return {
    ...model,
    graph: {
      ...g,
      // The seed's nodes go where the backward part starts: after the logits, before their first reader.
      node: [...g.node.slice(0, firstBackward), ...scratch.node, ...g.node.slice(firstBackward)],
      initializer: [...g.initializer, ...scratch.initializer],
      input: inputs,
      output: outputs,
    },
  };
}

/**
 * Whether the cotangent built from `mask` (one entry per output pixel, nonzero = in M) and class
 * `classIndex` is exactly `objective`'s weights ([H, W, C]): then the graph's gradient is the
 * objective's.
 */
export function seedMatches(objective: Objective, mask: ArrayLike<number>, classIndex: number, channels: number): boolean {
  if (objective.on !== 'logits' || objective.offset !== 0) return false;
  const wts = objective.weights;
  if (wts.length !== mask.length * channels) return false;
  const sign = channels === 1 ? 2 * classIndex - 1 : 1;
  for (let i = 0; i < mask.length; i++) {
    const m = mask[i] ? sign : 0;
    for (let c = 0; c < channels; c++) {
      const want = channels === 1 || c === classIndex ? m : 0;
      if (wts[i * channels + c] !== want) return false;
    }
  }
  return true;
}
