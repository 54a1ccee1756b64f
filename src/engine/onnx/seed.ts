/**
 * The class region's cotangent computed inside the graph: for S = Σ over the pixels predicted as
 * class c of y^c, ∂S/∂logits is the prediction's mask of c on channel c (a single sigmoid
 * channel: +1 on the pixels with y > 0 for class 1, −1 on the others for class 0). Built into a
 * primed graph (forward and backward parts in one run), it spares the forward run that would
 * otherwise come first to find the region. The class is an input (one session serves them all),
 * and the mask is an output so the caller can check it against the objective it computes from
 * the same logits (ties and NaNs are the caller's to settle: it falls back to a backward run).
 */
import type { Objective } from '../contract.js';
import { GraphBuilder, valueInfo } from './builder.js';
import { COTANGENT } from './gradient.js';
import { DataType, type GraphProto, type ModelProto } from './proto.js';

/** The class whose predicted region is M (int64 [1]). */
export const SEED_CLASS = 'sgc/seed_class';
/** Whether each pixel is predicted as that class (bool [1, 1, H, W]). */
export const SEED_MASK = 'sgc/seed_mask';

/**
 * `model` (an augmented graph whose backward nodes start at `firstBackward`) with its cotangent
 * input replaced by nodes that compute it from `logits` ([1, C, H, W], float32).
 */
export function seededModel(model: ModelProto, firstBackward: number, logits: string, logitsShape: number[]): ModelProto {
  const [, channels, h, w] = logitsShape;
  const scratch: GraphProto = { node: [], initializer: [], input: [], output: [], valueInfo: [] };
  const b = new GraphBuilder(scratch, 'sgc/seed/');
  const cls = SEED_CLASS;
  let labels: string;
  let along: string;
  if (channels === 1) {
    // One sigmoid channel: class 1 where y > 0; class 0 is −y.
    labels = b.op('Cast', [b.op('Greater', [logits, b.scalar('zero', 0)])], { to: { i: DataType.INT64 } });
    const c = b.op('Cast', [cls], { to: { i: DataType.FLOAT } });
    along = b.op('Sub', [b.op('Mul', [c, b.scalar('two', 2)]), b.scalar('one', 1)]);
  } else {
    labels = b.op('ArgMax', [logits], { axis: { i: 1 }, keepdims: { i: 1 } });
    const index = b.ints(
      'channels',
      Array.from({ length: channels }, (_, i) => i),
      [1, channels, 1, 1],
    );
    along = b.op('Cast', [b.op('Equal', [index, cls])], { to: { i: DataType.FLOAT } });
  }
  b.claim(SEED_MASK);
  const [mask] = b.node('Equal', [labels, cls], {}, [SEED_MASK]);
  b.claim(COTANGENT);
  b.node('Mul', [b.op('Cast', [mask], { to: { i: DataType.FLOAT } }), along], {}, [COTANGENT]);
  const g = model.graph;
  return {
    ...model,
    graph: {
      ...g,
      // The seed's nodes go where the backward part starts: after the logits, before their first reader.
      node: [...g.node.slice(0, firstBackward), ...scratch.node, ...g.node.slice(firstBackward)],
      initializer: [...g.initializer, ...scratch.initializer],
      input: [...g.input.filter((i) => i.name !== COTANGENT), valueInfo(SEED_CLASS, DataType.INT64, [1])],
      output: [...g.output, valueInfo(SEED_MASK, DataType.BOOL, [1, 1, h, w])],
    },
  };
}

/**
 * Whether the cotangent the graph built from `mask` (NCHW [1, 1, H, W], one byte per pixel) is
 * exactly `objective`'s weights ([H, W, C]) for class `classIndex`: then the graph's gradient is
 * the objective's.
 */
export function seedMatches(objective: Objective, mask: Uint8Array, classIndex: number, channels: number): boolean {
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
