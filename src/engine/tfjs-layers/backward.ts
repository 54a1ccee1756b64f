import * as tf from '@tensorflow/tfjs';
import type { GridBox } from '../contract.js';
import { squashingActivation, type GraphStep, type LayersGraph } from './graph.js';

/**
 * Reverse mode over a LayersModel's node graph on a cached forward pass: each layer's
 * vector-Jacobian product written with TF.js ops and the cached activations (a Conv2D's input
 * gradient is a transposed conv with the same kernel, a ReLU masks by its cached output,
 * max-pooling routes through MaxPoolGrad on the cached input and output, …) — the design of
 * the ONNX gradient graph (src/engine/onnx/vjp.ts) for TF.js. Nothing downstream of the layer runs
 * forward again, so a new region or class costs one backward pass, and K regions are K
 * cotangents stacked on the batch axis against batch-1 activations (broadcast).
 *
 * Layers without a rule here make `unsupported` name them; the adapter then differentiates
 * with tf.grad over a re-run of the downstream part instead (exact as well, just slower).
 *
 * Windows (as in src/engine/onnx/window.ts): a region's cotangent is zero outside its box and each
 * backward step spreads it only by its kernel, so when every step on the path keeps boxes or
 * grows them by a kernel (stride-1 convs, up-convolutions whose kernel equals their stride, and
 * pointwise, per-channel and channel-concat layers), each cotangent is kept as the box where it
 * can be nonzero and the tensor on that box, the cached activations are read on the box, and the
 * numbers are those of the whole map. A fine decoder level then costs the region plus a few pixels.
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

/** A cotangent on a box of its tensor's map: `t` is [K, box height, box width, C]; it is zero outside the box. */
interface Windowed {
  t: tf.Tensor;
  box: GridBox;
}

const boxSize = (b: GridBox): [number, number] => [b[0][1] - b[0][0], b[1][1] - b[1][0]];

/** A batch-1 (or K) NHWC tensor on a box. */
const onBox = (x: tf.Tensor, b: GridBox): tf.Tensor => tf.slice(x, [0, b[0][0], b[1][0], 0], [x.shape[0], ...boxSize(b), -1]);

/** A windowed cotangent as the whole [K, h, w, C] map (zeros outside its box). */
const toMap = (w: Windowed, h: number, width: number): tf.Tensor =>
  tf.pad(w.t, [
    [0, 0],
    [w.box[0][0], h - w.box[0][1]],
    [w.box[1][0], width - w.box[1][1]],
    [0, 0],
  ]);

/** The sum of two windowed cotangents of one tensor, on the box holding both. */
function addWindowed(a: Windowed, b: Windowed): Windowed {
  const box: GridBox = [
    [Math.min(a.box[0][0], b.box[0][0]), Math.max(a.box[0][1], b.box[0][1])],
    [Math.min(a.box[1][0], b.box[1][0]), Math.max(a.box[1][1], b.box[1][1])],
  ];
  const [h, w] = boxSize(box);
  const into = (x: Windowed) =>
    tf.pad(x.t, [
      [0, 0],
      [x.box[0][0] - box[0][0], box[0][0] + h - x.box[0][1]],
      [x.box[1][0] - box[1][0], box[1][0] + w - x.box[1][1]],
      [0, 0],
    ]);
  return { t: tf.add(into(a), into(b)), box };
}

/** The padding before the first row and column of a Conv2D or pooling ('same': TF's split of the total, the smaller half first). */
function padBefore(layer: LayerFields, k: [number, number], s: [number, number], inSize: number[], outSize: number[]): [number, number] {
  if (layer.padding !== 'same') return [0, 0];
  return [0, 1].map((i) => Math.floor(Math.max(0, (outSize[i] - 1) * s[i] + k[i] - inSize[i]) / 2)) as [number, number];
}

/**
 * A Conv2D's input gradient on a window: the full correlation of the windowed cotangent g (output
 * box `box`) with the kernel at the conv's stride ('valid' transposed conv: the box grows by the
 * kernel), cut to the input map. y[q] reads x[q·s − p + t] (p: padding before, t < k).
 */
function convInputWindow(
  layer: LayerFields,
  g: tf.Tensor,
  box: GridBox,
  kernel: tf.Tensor4D,
  inputShape: number[],
  outputShape: number[],
): Windowed {
  const [kh, kw, cin] = kernel.shape;
  const s = pair(layer.strides, 1);
  const k = g.shape[0] as number;
  const [h, w] = boxSize(box);
  const [fh, fw] = [(h - 1) * s[0] + kh, (w - 1) * s[1] + kw];
  const full = tf.conv2dTranspose(g as tf.Tensor4D, kernel, [k, fh, fw, cin], s, 'valid');
  const [pt, pl] = padBefore(layer, [kh, kw], s, inputShape.slice(1, 3), outputShape.slice(1, 3));
  const r0 = box[0][0] * s[0] - pt;
  const c0 = box[1][0] * s[1] - pl;
  const y: [number, number] = [Math.max(0, r0), Math.min(inputShape[1], r0 + fh)];
  const x: [number, number] = [Math.max(0, c0), Math.min(inputShape[2], c0 + fw)];
  return { t: tf.slice(full, [0, y[0] - r0, x[0] - c0, 0], [k, y[1] - y[0], x[1] - x[0], -1]), box: [y, x] };
}

/** Layers whose VJP keeps the box (pointwise, per channel, channel concat, sums and products of same-shape maps). */
const SAME_BOX = new Set([
  'BatchNormalization',
  'ReLU',
  'LeakyReLU',
  'Activation',
  'Add',
  'Multiply',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
]);

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
    vjp: (l, ctx) => [
      tf.mul(ctx.dy, tf.where(tf.greater(ctx.inputs[0], 0), tf.onesLike(ctx.inputs[0]), tf.fill(ctx.inputs[0].shape, l.alpha ?? 0.3))),
    ],
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
      return [
        tf.engine().runKernel('MaxPoolGrad', inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
      ];
    },
  },
  AveragePooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const poolSize = pair(l.poolSize, 2);
      const attrs = { filterSize: poolSize, strides: pair(l.strides ?? poolSize, 2), pad: l.padding ?? 'valid' };
      const input = tf.zeros(withBatch(ctx.inputs[0].shape, ctx.dy.shape[0])); // only its shape is read
      return [
        tf
          .engine()
          .runKernel(
            'AvgPoolGrad',
            { dy: ctx.dy, input } as unknown as tf.NamedTensorMap,
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor,
      ];
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
      return [
        tf
          .engine()
          .runKernel(
            kernel,
            { images, dy: ctx.dy } as unknown as tf.NamedTensorMap,
            { alignCorners: false, halfPixelCenters: false } as unknown as tf.NamedAttrMap,
          ) as tf.Tensor,
      ];
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
    vjp: (_l, ctx) => ctx.inputs.map((_, i) => (ctx.want[i] ? ctx.inputs.reduce((g, t, j) => (j === i ? g : tf.mul(g, t)), ctx.dy) : null)),
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
  private readonly windowReasons = new Map<string, string | null>();
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

  /** Null when windowed backward passes apply to tensors `ids` (every step after them has a window rule and the logits are a map); else why not. */
  windowReason(ids: number[]): string | null {
    const key = ids.join(',');
    const known = this.windowReasons.get(key);
    if (known !== undefined) return known;
    let reason: string | null = null;
    const out = this.graph.steps[this.producer.get(this.graph.outputId) as number]?.outputShapes[0];
    if (!out || out.length !== 4) reason = 'the model output is not a map';
    for (const i of this.pathOf(ids).downstream) {
      if (reason) break;
      const why = this.windowRule(i);
      if (why) reason = `${this.graph.steps[i].layer.name} (${this.graph.steps[i].layer.getClassName()}): ${why}`;
    }
    this.windowReasons.set(key, reason);
    return reason;
  }

  /** Why step `i` cannot run on a window (null: it can). */
  private windowRule(i: number): string | null {
    const step = this.graph.steps[i];
    if (!this.ruleFor(step)) return 'no VJP';
    const className = step.layer.getClassName();
    const layer = step.layer as unknown as LayerFields;
    if (this.linearAtOutput(step) && (className === 'Activation' || className === 'Softmax')) return null;
    if (SAME_BOX.has(className)) return null;
    if (className === 'Concatenate') return layer.axis === -1 || layer.axis === 3 ? null : 'concat along a spatial axis';
    if (className === 'Conv2D') return null;
    if (className === 'MaxPooling2D' || className === 'AveragePooling2D') {
      const k = pair(layer.poolSize, 2);
      const st = pair(layer.strides ?? layer.poolSize, 2);
      const [xs, ys] = [this.inputShapeOf(step), step.outputShapes[0]];
      const tiles =
        xs != null && k[0] === st[0] && k[1] === st[1] && ys[1] === (xs[1] as number) / st[0] && ys[2] === (xs[2] as number) / st[1];
      return tiles ? null : 'pooling windows that overlap, or do not tile the map';
    }
    if (className === 'UpSampling2D') return layer.interpolation === 'nearest' ? null : 'bilinear up-sampling';
    if (className === 'Conv2DTranspose') {
      const [kh, kw] = ((layer.kernel as Weight).read() as tf.Tensor4D).shape;
      const [sy, sx] = pair(layer.strides, 1);
      const xs = this.inputShapeOf(step);
      const ys = step.outputShapes[0];
      const exact = xs != null && kh === sy && kw === sx && ys[1] === (xs[1] as number) * sy && ys[2] === (xs[2] as number) * sx;
      return exact ? null : 'an up-convolution whose kernel is not its stride';
    }
    return 'no window rule';
  }

  /** The (symbolic) shape of a step's first input, when an earlier step produces it. */
  private inputShapeOf(step: GraphStep): Array<number | null> | null {
    const p = this.producer.get(step.inputIds[0]);
    if (p == null) return null;
    const from = this.graph.steps[p];
    return from.outputShapes[from.outputIds.indexOf(step.inputIds[0])] ?? null;
  }

  /**
   * ∂S/∂(tensor `id`) for the cotangent `seed` of the logits ([K, …]: K objectives at once),
   * on the cached forward pass `cache` (every tensor by id, batch 1). The caller tidies; check
   * `unsupported(id)` first. Returns [K, …] (zeros where the output does not depend on it).
   */
  gradient(cache: Map<number, tf.Tensor>, id: number, seed: tf.Tensor): tf.Tensor {
    return this.gradients(cache, [id], seed)[0];
  }

  /** The steps after tensors `ids` and the tensors on the way (ids included). */
  private pathOf(ids: number[]): { downstream: Set<number>; onPath: Set<number> } {
    const downstream = new Set<number>();
    for (const id of ids) for (const i of this.graph.downstreamOf(id)) downstream.add(i);
    const onPath = new Set<number>(ids);
    for (const i of downstream) this.graph.steps[i].outputIds.forEach((o) => onPath.add(o));
    return { downstream, onPath };
  }

  /**
   * The same for several tensors in one backward pass (the cotangents of every tensor on the way
   * are computed anyway). With `support` (the box of the logits outside which the seed is zero;
   * null: zero everywhere) and windowReason(ids) null, the backward pass runs on windows.
   */
  gradients(cache: Map<number, tf.Tensor>, ids: number[], seed: tf.Tensor, support?: GridBox | null): tf.Tensor[] {
    if (support !== undefined && this.windowReason(ids) == null) return this.windowedGradients(cache, ids, seed, support);
    const { graph } = this;
    const { downstream, onPath } = this.pathOf(ids);
    const cotangents = new Map<number, tf.Tensor>([[graph.outputId, seed]]);
    for (const { step, concat } of this.backwardSteps(downstream, onPath, (t) => cotangents.has(t))) {
      const dy = cotangents.get(step.outputIds[0]) as tf.Tensor;
      if (concat != null) {
        // A conv right after a concat with some inputs off the path (a U-Net's skips): only the
        // input channels on the path are differentiated, with the matching slice of the kernel.
        this.convThroughConcat(step, graph.steps[concat], cache, dy, onPath, cotangents);
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

  /** `gradients` on windows (see the module comment); the results are whole maps. */
  private windowedGradients(cache: Map<number, tf.Tensor>, ids: number[], seed: tf.Tensor, support: GridBox | null): tf.Tensor[] {
    const { graph } = this;
    const k = seed.shape[0] as number;
    const whole = (id: number) => (cache.get(id) as tf.Tensor).shape;
    const cotangents = new Map<number, Windowed>(support ? [[graph.outputId, { t: onBox(seed, support), box: support }]] : []);
    const add = (id: number, g: Windowed) => {
      const prev = cotangents.get(id);
      cotangents.set(id, prev ? addWindowed(prev, g) : g);
    };
    const { downstream, onPath } = this.pathOf(ids);
    for (const { step, concat } of this.backwardSteps(downstream, onPath, (t) => cotangents.has(t))) {
      const dy = cotangents.get(step.outputIds[0]) as Windowed;
      const layer = step.layer as unknown as LayerFields;
      const className = step.layer.getClassName();
      const output = onBox(cache.get(step.outputIds[0]) as tf.Tensor, dy.box);
      const linear = this.linearAtOutput(step);
      if (concat != null || className === 'Conv2D') {
        const g = fusedActivation(layer, { dy: dy.t, inputs: [], output, want: [true], linear }) as tf.Tensor;
        const kernel = (layer.kernel as Weight).read() as tf.Tensor4D;
        if (concat == null) {
          add(step.inputIds[0], convInputWindow(layer, g, dy.box, kernel, whole(step.inputIds[0]), whole(step.outputIds[0])));
          continue;
        }
        // After a concat with inputs off the path: only the on-path channels, with their kernel slice.
        let offset = 0;
        for (const x of graph.steps[concat].inputIds) {
          const shape = whole(x);
          const c = shape[3] as number;
          if (onPath.has(x))
            add(
              x,
              convInputWindow(layer, g, dy.box, tf.slice(kernel, [0, 0, offset, 0], [-1, -1, c, -1]), shape, whole(step.outputIds[0])),
            );
          offset += c;
        }
        continue;
      }
      if (className === 'Conv2DTranspose') {
        // Kernel = stride: the box, widened to whole strides, maps onto whole input pixels.
        const g = fusedActivation(layer, { dy: dy.t, inputs: [], output, want: [true], linear }) as tf.Tensor;
        const [sy, sx] = pair(layer.strides, 1);
        const a: GridBox = [
          [Math.floor(dy.box[0][0] / sy) * sy, Math.ceil(dy.box[0][1] / sy) * sy],
          [Math.floor(dy.box[1][0] / sx) * sx, Math.ceil(dy.box[1][1] / sx) * sx],
        ];
        const aligned = tf.pad(g, [
          [0, 0],
          [dy.box[0][0] - a[0][0], a[0][1] - dy.box[0][1]],
          [dy.box[1][0] - a[1][0], a[1][1] - dy.box[1][1]],
          [0, 0],
        ]);
        const dx = tf.conv2d(aligned as tf.Tensor4D, (layer.kernel as Weight).read() as tf.Tensor4D, [sy, sx], 'valid');
        add(step.inputIds[0], {
          t: dx,
          box: [
            [a[0][0] / sy, a[0][1] / sy],
            [a[1][0] / sx, a[1][1] / sx],
          ],
        });
        continue;
      }
      if (className === 'MaxPooling2D' || className === 'AveragePooling2D') {
        // Pool size = stride, no padding (windowRule): output box × stride is the input box, and
        // the pooling windows inside it are the model's.
        const [sy, sx] = pair(layer.strides ?? layer.poolSize, 2);
        const inBox: GridBox = [
          [dy.box[0][0] * sy, dy.box[0][1] * sy],
          [dy.box[1][0] * sx, dy.box[1][1] * sx],
        ];
        const input = onBox(cache.get(step.inputIds[0]) as tf.Tensor, inBox);
        const [grad] = (this.ruleFor(step) as Rule)(layer, { dy: dy.t, inputs: [input], output, want: [true], linear });
        add(step.inputIds[0], { t: grad as tf.Tensor, box: inBox });
        continue;
      }
      if (className === 'UpSampling2D') {
        // Nearest, integer size (windowRule): y[i] = x[⌊i/s⌋]; the box widened to whole blocks.
        const [sy, sx] = pair(layer.size, 2);
        const a: GridBox = [
          [Math.floor(dy.box[0][0] / sy) * sy, Math.ceil(dy.box[0][1] / sy) * sy],
          [Math.floor(dy.box[1][0] / sx) * sx, Math.ceil(dy.box[1][1] / sx) * sx],
        ];
        const aligned = tf.pad(dy.t, [
          [0, 0],
          [dy.box[0][0] - a[0][0], a[0][1] - dy.box[0][1]],
          [dy.box[1][0] - a[1][0], a[1][1] - dy.box[1][1]],
          [0, 0],
        ]);
        const inBox: GridBox = [
          [a[0][0] / sy, a[0][1] / sy],
          [a[1][0] / sx, a[1][1] / sx],
        ];
        const input = onBox(cache.get(step.inputIds[0]) as tf.Tensor, inBox);
        const [grad] = (this.ruleFor(step) as Rule)(layer, { dy: aligned, inputs: [input], output: aligned, want: [true], linear });
        add(step.inputIds[0], { t: grad as tf.Tensor, box: inBox });
        continue;
      }
      // The box stays: the VJP on the window, with the cached tensors read on it.
      const grads = (this.ruleFor(step) as Rule)(layer, {
        dy: dy.t,
        inputs: step.inputIds.map((x) => onBox(cache.get(x) as tf.Tensor, dy.box)),
        output,
        want: step.inputIds.map((x) => onPath.has(x)),
        linear,
      });
      step.inputIds.forEach((x, j) => {
        const g = grads[j];
        if (g && onPath.has(x)) add(x, { t: g, box: dy.box });
      });
    }
    return ids.map((id) => {
      const w = cotangents.get(id);
      const [, h, width] = whole(id);
      return w ? toMap(w, h, width) : tf.zeros(withBatch(whole(id), k));
    });
  }

  /**
   * The steps after the cut, last first, that a cotangent reaches (`reached(tensor)`, asked as the
   * walk goes), each with the concat it differentiates through (concatIntoConv), which is then
   * not visited on its own.
   */
  private *backwardSteps(
    downstream: Set<number>,
    onPath: Set<number>,
    reached: (tensor: number) => boolean,
  ): Generator<{ step: GraphStep; concat: number | null }> {
    const skipped = new Set<number>();
    for (const i of [...downstream].sort((a, b) => b - a)) {
      const step = this.graph.steps[i];
      if (skipped.has(i) || !reached(step.outputIds[0])) continue;
      const concat = this.concatIntoConv(i, onPath);
      if (concat != null) skipped.add(concat);
      yield { step, concat };
    }
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

  private convThroughConcat(
    conv: GraphStep,
    concat: GraphStep,
    cache: Map<number, tf.Tensor>,
    dy: tf.Tensor,
    onPath: Set<number>,
    cotangents: Map<number, tf.Tensor>,
  ): void {
    const layer = conv.layer as unknown as LayerFields;
    const g = fusedActivation(layer, {
      dy,
      inputs: [],
      output: cache.get(conv.outputIds[0]) as tf.Tensor,
      want: [true],
      linear: this.linearAtOutput(conv),
    }) as tf.Tensor4D;
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
