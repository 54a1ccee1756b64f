import * as tf from '@tensorflow/tfjs';
import { squashingActivation, type GraphStep, type LayersGraph } from './layers-graph.js';

/**
 * Reverse mode over a LayersModel's node graph on a cached forward pass: each layer's
 * vector-Jacobian product written with TF.js ops and the cached activations (a Conv2D's input
 * gradient is a transposed conv with the same kernel, a ReLU masks by its cached output,
 * max-pooling routes through MaxPoolGrad on the cached input and output, …) — the design of
 * the ONNX gradient graph (src/onnx/vjp.ts) for TF.js. Nothing downstream of the layer runs
 * forward again, so a new region or class costs one backward pass, and K regions are K
 * cotangents stacked on the batch axis against batch-1 activations (broadcast).
 *
 * Layers without a rule here make `unsupported` name them; the adapter then differentiates
 * with tf.grad over a re-run of the downstream part instead (exact as well, just slower).
 */

/* The parts of tfjs-layers' layer objects that the rules read (internal fields, stable since tfjs 1.x). */
interface Weight {
  read(): tf.Tensor;
}
interface LayerFields {
  getClassName(): string;
  activation?: { getClassName(): string };
  kernel?: Weight;
  strides?: number[];
  padding?: 'same' | 'valid';
  dilationRate?: number[];
  dataFormat?: string;
  poolSize?: number[];
  size?: number[];
  interpolation?: string;
  axis?: number | number[];
  epsilon?: number;
  scale?: boolean;
  gamma?: Weight | null;
  movingVariance?: Weight;
  maxValue?: number | null;
  alpha?: number;
}

/** A layer's VJP: the cotangents of its inputs (null for inputs not asked for) given its output's. */
type Rule = (layer: LayerFields, ctx: StepContext) => Array<tf.Tensor | null>;

interface StepContext {
  /** Cotangent of the step's output, [K, …]. */
  dy: tf.Tensor;
  /** The cached inputs and output of the forward pass, batch 1 (the output as cached: logits for the last layer). */
  inputs: tf.Tensor[];
  output: tf.Tensor;
  /** Which inputs need a cotangent. */
  want: boolean[];
  /** The layer's fused activation is skipped because its output is read as logits. */
  linear: boolean;
}

/** ∂/∂x of an activation given its output y (null: no rule). */
function activationVjp(name: string): ((dy: tf.Tensor, y: tf.Tensor) => tf.Tensor) | null {
  switch (name) {
    case 'linear':
      return (dy) => dy;
    case 'relu':
      return (dy, y) => tf.mul(dy, tf.step(y, 0));
    case 'relu6':
      return (dy, y) => tf.mul(dy, tf.mul(tf.step(y, 0), tf.step(tf.neg(tf.sub(y, 6)), 0)));
    case 'sigmoid':
      return (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)));
    case 'tanh':
      return (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)));
    case 'elu':
      return (dy, y) => tf.mul(dy, tf.where(tf.greater(y, 0), tf.onesLike(y), tf.add(y, 1)));
    default:
      return null;
  }
}

function fusedActivation(layer: LayerFields, ctx: StepContext): tf.Tensor | null {
  if (ctx.linear || !layer.activation) return ctx.dy;
  const vjp = activationVjp(layer.activation.getClassName().toLowerCase());
  return vjp ? vjp(ctx.dy, ctx.output) : null;
}

/** The batch size of the cotangent; cached tensors (batch 1) are tiled to it where a kernel needs equal shapes. */
const tiled = (x: tf.Tensor, k: number): tf.Tensor => (k === 1 ? x : tf.tile(x, [k, ...x.shape.slice(1).map(() => 1)]));
const withBatch = (shape: number[], k: number): number[] => [k, ...shape.slice(1)];
const pair = (v: number[] | undefined, fallback: number): [number, number] => [v?.[0] ?? fallback, v?.[1] ?? v?.[0] ?? fallback];
const channelsLast = (layer: LayerFields) => layer.dataFormat == null || layer.dataFormat === 'channelsLast';

/** A Conv2D's input gradient for the cotangent g [K, …] of its (pre-activation) output: the transposed conv with its kernel (or a slice of its input channels). */
function convInputGradient(layer: LayerFields, g: tf.Tensor, kernel: tf.Tensor4D, inputShape: number[]): tf.Tensor {
  const shape = withBatch(inputShape, g.shape[0] as number) as [number, number, number, number];
  return tf.conv2dTranspose(g as tf.Tensor4D, kernel, shape, pair(layer.strides, 1), layer.padding ?? 'valid');
}

const RULES: Record<string, { applies(layer: LayerFields, inputs: number): boolean; vjp: Rule }> = {
  Conv2D: {
    applies: (l, n) => n === 1 && channelsLast(l) && pair(l.dilationRate, 1).every((d) => d === 1),
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g) return [null];
      return [convInputGradient(l, g, (l.kernel as Weight).read() as tf.Tensor4D, ctx.inputs[0].shape)];
    },
  },
  Conv2DTranspose: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g) return [null];
      return [tf.conv2d(g as tf.Tensor4D, (l.kernel as Weight).read() as tf.Tensor4D, pair(l.strides, 1), l.padding ?? 'valid')];
    },
  },
  Dense: {
    applies: (_l, n) => n === 1,
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g || g.rank !== 2) return [null];
      return [tf.matMul(g as tf.Tensor2D, (l.kernel as Weight).read() as tf.Tensor2D, false, true)];
    },
  },
  BatchNormalization: {
    applies: (l, n) => n === 1 && (l.axis === -1 || (Array.isArray(l.axis) && l.axis.length === 1 && l.axis[0] === -1)),
    vjp: (l, ctx) => {
      let factor = tf.rsqrt(tf.add((l.movingVariance as Weight).read(), l.epsilon ?? 1e-3));
      if (l.scale !== false && l.gamma) factor = tf.mul(factor, l.gamma.read());
      return [tf.mul(ctx.dy, factor)];
    },
  },
  ReLU: {
    applies: (_l, n) => n === 1,
    vjp: (l, ctx) => {
      let mask = tf.step(ctx.output, 0);
      if (l.maxValue != null) mask = tf.mul(mask, tf.step(tf.neg(tf.sub(ctx.output, l.maxValue)), 0));
      return [tf.mul(ctx.dy, mask)];
    },
  },
  LeakyReLU: {
    applies: (_l, n) => n === 1,
    vjp: (l, ctx) => [tf.mul(ctx.dy, tf.where(tf.greater(ctx.inputs[0], 0), tf.onesLike(ctx.inputs[0]), tf.fill(ctx.inputs[0].shape, l.alpha ?? 0.3)))],
  },
  Activation: {
    applies: (l, n) => n === 1 && l.activation != null && activationVjp(l.activation.getClassName().toLowerCase()) != null,
    vjp: (l, ctx) => [fusedActivation(l, ctx)],
  },
  MaxPooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const k = ctx.dy.shape[0];
      const poolSize = pair(l.poolSize, 2);
      const attrs = { filterSize: poolSize, strides: pair(l.strides ?? poolSize, 2), pad: l.padding ?? 'valid' };
      const inputs = { dy: ctx.dy, input: tiled(ctx.inputs[0], k), output: tiled(ctx.output, k) };
      return [tf.engine().runKernel('MaxPoolGrad', inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor];
    },
  },
  AveragePooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const poolSize = pair(l.poolSize, 2);
      const attrs = { filterSize: poolSize, strides: pair(l.strides ?? poolSize, 2), pad: l.padding ?? 'valid' };
      const input = tf.zeros(withBatch(ctx.inputs[0].shape, ctx.dy.shape[0])); // only its shape is read
      return [tf.engine().runKernel('AvgPoolGrad', { dy: ctx.dy, input } as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor];
    },
  },
  GlobalAveragePooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (_l, ctx) => {
      const [, h, w, c] = ctx.inputs[0].shape;
      const k = ctx.dy.shape[0];
      return [tf.broadcastTo(tf.div(tf.reshape(ctx.dy, [k, 1, 1, c]), h * w), [k, h, w, c])];
    },
  },
  UpSampling2D: {
    applies: (l, n) => n === 1 && channelsLast(l) && (l.interpolation === 'nearest' || l.interpolation === 'bilinear'),
    vjp: (l, ctx) => {
      const images = tf.zeros(withBatch(ctx.inputs[0].shape, ctx.dy.shape[0])); // only its shape is read
      const kernel = l.interpolation === 'nearest' ? 'ResizeNearestNeighborGrad' : 'ResizeBilinearGrad';
      return [tf.engine().runKernel(kernel, { images, dy: ctx.dy } as unknown as tf.NamedTensorMap, { alignCorners: false, halfPixelCenters: false } as unknown as tf.NamedAttrMap) as tf.Tensor];
    },
  },
  Concatenate: {
    applies: () => true,
    vjp: (l, ctx) => {
      const rank = ctx.output.rank;
      const axis = typeof l.axis === 'number' ? (l.axis < 0 ? rank + l.axis : l.axis) : rank - 1;
      const sizes = ctx.inputs.map((t) => t.shape[axis]);
      const parts = tf.split(ctx.dy, sizes, axis);
      return parts.map((p, i) => (ctx.want[i] ? p : null));
    },
  },
  Add: {
    applies: () => true,
    vjp: (_l, ctx) => ctx.inputs.map((_, i) => (ctx.want[i] ? ctx.dy : null)),
  },
  Multiply: {
    applies: () => true,
    vjp: (_l, ctx) =>
      ctx.inputs.map((_, i) => (ctx.want[i] ? ctx.inputs.reduce((g, t, j) => (j === i ? g : tf.mul(g, t)), ctx.dy) : null)),
  },
  Flatten: { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [tf.reshape(ctx.dy, withBatch(ctx.inputs[0].shape, ctx.dy.shape[0]))] },
  Reshape: { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [tf.reshape(ctx.dy, withBatch(ctx.inputs[0].shape, ctx.dy.shape[0]))] },
};
// Layers that are the identity at inference.
for (const name of ['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']) {
  RULES[name] = { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [ctx.dy] };
}

export class LayersBackward {
  private readonly support = new Map<number, string | null>();
  /** The step that produces each tensor, and how many step inputs read it. */
  private readonly producer = new Map<number, number>();
  private readonly consumers = new Map<number, number>();

  constructor(private readonly graph: LayersGraph) {
    graph.steps.forEach((step, i) => {
      for (const o of step.outputIds) this.producer.set(o, i);
      for (const x of step.inputIds) this.consumers.set(x, (this.consumers.get(x) ?? 0) + 1);
    });
  }

  /** Null when every layer downstream of tensor `id` has a VJP here; else the first one that has none ("name (Class)"). */
  unsupported(id: number): string | null {
    const known = this.support.get(id);
    if (known !== undefined) return known;
    let missing: string | null = null;
    for (const i of this.graph.downstreamOf(id)) {
      const step = this.graph.steps[i];
      if (!this.ruleFor(step)) {
        missing = `${step.layer.name} (${step.layer.getClassName()})`;
        break;
      }
    }
    this.support.set(id, missing);
    return missing;
  }

  /**
   * ∂S/∂(tensor `id`) for the cotangent `seed` of the logits ([K, …]: K objectives at once),
   * on the cached forward pass `cache` (every tensor by id, batch 1). The caller tidies; check
   * `unsupported(id)` first. Returns [K, …] (zeros where the output does not depend on it).
   */
  gradient(cache: Map<number, tf.Tensor>, id: number, seed: tf.Tensor): tf.Tensor {
    return this.gradients(cache, [id], seed)[0];
  }

  /** The same for several tensors in one backward pass (the cotangents of every tensor on the way are computed anyway). */
  gradients(cache: Map<number, tf.Tensor>, ids: number[], seed: tf.Tensor): tf.Tensor[] {
    const { graph } = this;
    const downstream = new Set<number>();
    for (const id of ids) for (const i of graph.downstreamOf(id)) downstream.add(i);
    const onPath = new Set<number>(ids);
    for (const i of downstream) graph.steps[i].outputIds.forEach((o) => onPath.add(o));
    const cotangents = new Map<number, tf.Tensor>([[graph.outputId, seed]]);
    const order = [...downstream].sort((a, b) => b - a);
    const done = new Set<number>();
    for (const i of order) {
      if (done.has(i)) continue;
      const step = graph.steps[i];
      const dy = cotangents.get(step.outputIds[0]);
      if (!dy) continue; // does not reach the output
      const concat = this.concatIntoConv(i, onPath);
      if (concat != null) {
        // A conv right after a concat with some inputs off the path (a U-Net's skips): only the
        // input channels on the path are differentiated, with the matching slice of the kernel.
        this.convThroughConcat(step, graph.steps[concat], cache, dy, onPath, cotangents);
        done.add(concat);
        continue;
      }
      const grads = (this.ruleFor(step) as Rule)(step.layer as unknown as LayerFields, {
        dy,
        inputs: step.inputIds.map((x) => cache.get(x) as tf.Tensor),
        output: cache.get(step.outputIds[0]) as tf.Tensor,
        want: step.inputIds.map((x) => onPath.has(x)),
        linear: this.linearAtOutput(step),
      });
      step.inputIds.forEach((x, k) => {
        const g = grads[k];
        if (!g || !onPath.has(x)) return;
        const prev = cotangents.get(x);
        cotangents.set(x, prev ? tf.add(prev, g) : g);
      });
    }
    return ids.map((id) => cotangents.get(id) ?? tf.zeros(withBatch((cache.get(id) as tf.Tensor).shape, seed.shape[0] as number)));
  }

  /**
   * The Concatenate step (index) feeding Conv2D step `i`, when the conv is its only consumer, it
   * joins on the channel axis and not all of its inputs are on the path; else null.
   */
  private concatIntoConv(i: number, onPath: Set<number>): number | null {
    const step = this.graph.steps[i];
    if (step.layer.getClassName() !== 'Conv2D' || !this.ruleFor(step)) return null;
    const t = step.inputIds[0];
    const p = this.producer.get(t);
    if (p == null) return null;
    const concat = this.graph.steps[p];
    const axis = (concat.layer as unknown as LayerFields).axis;
    if (concat.layer.getClassName() !== 'Concatenate' || (axis !== -1 && axis !== 3) || this.consumers.get(t) !== 1) return null;
    // Some inputs on the path (the concat is downstream of the cut, not the cut itself), not all.
    const on = concat.inputIds.filter((x) => onPath.has(x)).length;
    return on > 0 && on < concat.inputIds.length ? p : null;
  }

  private convThroughConcat(conv: GraphStep, concat: GraphStep, cache: Map<number, tf.Tensor>, dy: tf.Tensor, onPath: Set<number>, cotangents: Map<number, tf.Tensor>): void {
    const layer = conv.layer as unknown as LayerFields;
    const g = fusedActivation(layer, { dy, inputs: [], output: cache.get(conv.outputIds[0]) as tf.Tensor, want: [true], linear: this.linearAtOutput(conv) }) as tf.Tensor4D;
    const kernel = (layer.kernel as Weight).read() as tf.Tensor4D;
    let offset = 0;
    for (const x of concat.inputIds) {
      const shape = (cache.get(x) as tf.Tensor).shape;
      const c = shape[3] as number;
      if (onPath.has(x)) {
        const dx = convInputGradient(layer, g, tf.slice(kernel, [0, 0, offset, 0], [-1, -1, c, -1]), shape);
        const prev = cotangents.get(x);
        cotangents.set(x, prev ? tf.add(prev, dx) : dx);
      }
      offset += c;
    }
  }

  /** The step's VJP, or null when there is none for this layer (class, inputs, activation). */
  private ruleFor(step: GraphStep): Rule | null {
    const className = step.layer.getClassName();
    const layer = step.layer as unknown as LayerFields;
    const linear = this.linearAtOutput(step);
    // A softmax/sigmoid layer at the end is skipped by the executor (the cache holds logits).
    if (linear && (className === 'Activation' || className === 'Softmax')) return (_l, ctx) => [ctx.dy];
    const rule = RULES[className];
    if (!rule || step.outputIds.length !== 1 || !rule.applies(layer, step.inputIds.length)) return null;
    const activationOk = !layer.activation || linear || activationVjp(layer.activation.getClassName().toLowerCase()) != null;
    return activationOk ? rule.vjp : null;
  }

  /** The output layer's softmax/sigmoid is skipped (the cache holds logits), as the executor does. */
  private linearAtOutput(step: GraphStep): boolean {
    return step.outputIds.includes(this.graph.outputId) && squashingActivation(step.layer) !== 'none';
  }
}
