import * as tf from '@tensorflow/tfjs';
import type { GridBox } from '../contract.js';
import { alignWindowed, boxSize, type Windowed } from './windows.js';
import { RULES_3D } from './rules-3d.js';

/**
 * The backward rules of LayersModel layers, one record per layer class (RULES): when the rule
 * applies, its vector-Jacobian product written with TF.js ops and the cached activations (a
 * Conv2D's input gradient is a transposed conv with the same kernel, a ReLU masks by its cached
 * output, max-pooling routes through MaxPoolGrad on the cached input and output, …), and its
 * window rule: whether the layer runs on a window around a region and, for layers that move
 * boxes (convolutions, pooling, up-sampling), the VJP on the window. The walker (./backward.ts)
 * reads nothing else about layers.
 */

/* The parts of tfjs-layers' layer objects that the rules read (internal fields, stable since tfjs 1.x). */
export interface Weight {
  read(): tf.Tensor;
}
export interface LayerFields {
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
export type Rule = (layer: LayerFields, ctx: StepContext) => Array<tf.Tensor | null>;

export interface StepContext {
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

/** A step on a window: its output's cotangent on a box, the cached tensors read on boxes. */
export interface WindowContext {
  dy: Windowed;
  /** The cached output on dy.box. */
  output: tf.Tensor;
  /** The cached first input on a box of its map. */
  input(box: GridBox): tf.Tensor;
  /** Whole-map shapes of the first input and the output. */
  inputShape: number[];
  outputShape: number[];
  linear: boolean;
}

/** The static shapes a window rule checks: the first input's (null when no step produces it) and the output's. */
export interface StepShapes {
  input: Array<number | null> | null;
  output: Array<number | null>;
}

export interface LayerRule {
  /** Whether the VJP covers this layer's configuration and number of inputs. */
  applies(layer: LayerFields, inputs: number): boolean;
  vjp: Rule;
  /** Why the layer cannot run on a window (null: it can); absent: no window rule. */
  window?(layer: LayerFields, shapes: StepShapes): string | null;
  /** The VJP on a window, for layers that move boxes (absent: the box stays; `vjp` runs on it). */
  windowVjp?(layer: LayerFields, ctx: WindowContext): Windowed;
  /**
   * The gradient of input channels [offset, offset + channels) alone, given the cotangent `g` of
   * the pre-activation output: the walker skips a channel Concat feeding this layer with inputs
   * off the path (a U-Net's skips). With `window`, `g` is on window.box and so is the result.
   */
  channelVjp?(layer: LayerFields, g: tf.Tensor, offset: number, channels: number, inputShape: number[], window?: WindowOn): Windowed;
}

/** A window of a step's output: its box and the whole output's shape. */
export interface WindowOn {
  box: GridBox;
  outputShape: number[];
}

/** ∂/∂x of an activation given its output y (null: no rule). */
export function activationVjp(name: string): ((dy: tf.Tensor, y: tf.Tensor) => tf.Tensor) | null {
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

/** The cotangent of a layer's pre-activation output, through its fused activation (null: no rule for it). */
export function fusedActivation(layer: LayerFields, ctx: StepContext): tf.Tensor | null {
  if (ctx.linear || !layer.activation) return ctx.dy;
  const vjp = activationVjp(layer.activation.getClassName().toLowerCase());
  return vjp ? vjp(ctx.dy, ctx.output) : null;
}

/** The batch size of the cotangent; cached tensors (batch 1) are tiled to it where a kernel needs equal shapes. */
export const tiled = (x: tf.Tensor, k: number): tf.Tensor => (k === 1 ? x : tf.tile(x, [k, ...x.shape.slice(1).map(() => 1)]));
export const withBatch = (shape: number[], k: number): number[] => [k, ...shape.slice(1)];
const pair = (v: number[] | undefined, fallback: number): [number, number] => [v?.[0] ?? fallback, v?.[1] ?? v?.[0] ?? fallback];
export const channelsLast = (layer: LayerFields) => layer.dataFormat == null || layer.dataFormat === 'channelsLast';

/** A Conv2D's input gradient for the cotangent g [K, …] of its (pre-activation) output: the transposed conv with its kernel (or a slice of its input channels). */
function convInputGradient(layer: LayerFields, g: tf.Tensor, kernel: tf.Tensor4D, inputShape: number[]): tf.Tensor {
  const shape = withBatch(inputShape, g.shape[0] as number) as [number, number, number, number];
  return tf.conv2dTranspose(g as tf.Tensor4D, kernel, shape, pair(layer.strides, 1), layer.padding ?? 'valid');
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

const keepsBox = (): null => null;

/** Pooling whose windows tile the map (pool size = stride, sizes divide): the output box × stride is the input box. */
function tilingPool(layer: LayerFields, shapes: StepShapes): string | null {
  const k = pair(layer.poolSize, 2);
  const st = pair(layer.strides ?? layer.poolSize, 2);
  const [xs, ys] = [shapes.input, shapes.output];
  const tiles =
    xs != null && k[0] === st[0] && k[1] === st[1] && ys[1] === (xs[1] as number) / st[0] && ys[2] === (xs[2] as number) / st[1];
  return tiles ? null : 'pooling windows that overlap, or do not tile the map';
}

/** Pooling on a window (tilingPool holds): the model's pooling windows inside the input box. */
const poolWindow =
  (vjp: Rule) =>
  (layer: LayerFields, ctx: WindowContext): Windowed => {
    const [sy, sx] = pair(layer.strides ?? layer.poolSize, 2);
    const { box } = ctx.dy;
    const inBox: GridBox = [
      [box[0][0] * sy, box[0][1] * sy],
      [box[1][0] * sx, box[1][1] * sx],
    ];
    const [grad] = vjp(layer, { dy: ctx.dy.t, inputs: [ctx.input(inBox)], output: ctx.output, want: [true], linear: ctx.linear });
    return { t: grad as tf.Tensor, box: inBox };
  };

const conv2d: Rule = (l, ctx) => {
  const g = fusedActivation(l, ctx);
  if (!g) return [null];
  return [convInputGradient(l, g, (l.kernel as Weight).read() as tf.Tensor4D, ctx.inputs[0].shape)];
};
const maxPoolGrad: Rule = (l, ctx) => {
  const k = ctx.dy.shape[0];
  const poolSize = pair(l.poolSize, 2);
  const attrs = { filterSize: poolSize, strides: pair(l.strides ?? poolSize, 2), pad: l.padding ?? 'valid' };
  const inputs = { dy: ctx.dy, input: tiled(ctx.inputs[0], k), output: tiled(ctx.output, k) };
  return [tf.engine().runKernel('MaxPoolGrad', inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor];
};

const avgPoolGrad: Rule = (l, ctx) => {
  const poolSize = pair(l.poolSize, 2);
  const attrs = { filterSize: poolSize, strides: pair(l.strides ?? poolSize, 2), pad: l.padding ?? 'valid' };
  const input = tf.zeros(withBatch(ctx.inputs[0].shape, ctx.dy.shape[0])); // only its shape is read
  return [
    tf
      .engine()
      .runKernel('AvgPoolGrad', { dy: ctx.dy, input } as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
  ];
};

const upSamplingGrad: Rule = (l, ctx) => {
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
};

/** Layer rules by class name. */
export const RULES: Record<string, LayerRule> = {
  Conv2D: {
    applies: (l, n) => n === 1 && channelsLast(l) && pair(l.dilationRate, 1).every((d) => d === 1),
    vjp: conv2d,
    window: keepsBox,
    windowVjp: (l, ctx) => {
      const g = fusedActivation(l, { dy: ctx.dy.t, inputs: [], output: ctx.output, want: [true], linear: ctx.linear }) as tf.Tensor;
      const kernel = (l.kernel as Weight).read() as tf.Tensor4D;
      return convInputWindow(l, g, ctx.dy.box, kernel, ctx.inputShape, ctx.outputShape);
    },
    channelVjp: (l, g, offset, channels, inputShape, window) => {
      const kernel = tf.slice((l.kernel as Weight).read() as tf.Tensor4D, [0, 0, offset, 0], [-1, -1, channels, -1]);
      if (window) return convInputWindow(l, g, window.box, kernel, inputShape, window.outputShape);
      return {
        t: convInputGradient(l, g, kernel, inputShape),
        box: [
          [0, inputShape[1]],
          [0, inputShape[2]],
        ],
      };
    },
  },
  Conv2DTranspose: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g) return [null];
      return [tf.conv2d(g as tf.Tensor4D, (l.kernel as Weight).read() as tf.Tensor4D, pair(l.strides, 1), l.padding ?? 'valid')];
    },
    window: (l, shapes) => {
      const [kh, kw] = ((l.kernel as Weight).read() as tf.Tensor4D).shape;
      const [sy, sx] = pair(l.strides, 1);
      const [xs, ys] = [shapes.input, shapes.output];
      const exact = xs != null && kh === sy && kw === sx && ys[1] === (xs[1] as number) * sy && ys[2] === (xs[2] as number) * sx;
      return exact ? null : 'an up-convolution whose kernel is not its stride';
    },
    windowVjp: (l, ctx) => {
      // Kernel = stride: the box, widened to whole strides, maps onto whole input pixels.
      const g = fusedActivation(l, { dy: ctx.dy.t, inputs: [], output: ctx.output, want: [true], linear: ctx.linear }) as tf.Tensor;
      const [sy, sx] = pair(l.strides, 1);
      const aligned = alignWindowed({ t: g, box: ctx.dy.box }, sy, sx);
      const a = aligned.box;
      const dx = tf.conv2d(aligned.t as tf.Tensor4D, (l.kernel as Weight).read() as tf.Tensor4D, [sy, sx], 'valid');
      return {
        t: dx,
        box: [
          [a[0][0] / sy, a[0][1] / sy],
          [a[1][0] / sx, a[1][1] / sx],
        ],
      };
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
    window: keepsBox,
  },
  ReLU: {
    applies: (_l, n) => n === 1,
    vjp: (l, ctx) => {
      let mask = tf.step(ctx.output, 0);
      if (l.maxValue != null) mask = tf.mul(mask, tf.step(tf.neg(tf.sub(ctx.output, l.maxValue)), 0));
      return [tf.mul(ctx.dy, mask)];
    },
    window: keepsBox,
  },
  LeakyReLU: {
    applies: (_l, n) => n === 1,
    vjp: (l, ctx) => [
      tf.mul(ctx.dy, tf.where(tf.greater(ctx.inputs[0], 0), tf.onesLike(ctx.inputs[0]), tf.fill(ctx.inputs[0].shape, l.alpha ?? 0.3))),
    ],
    window: keepsBox,
  },
  Activation: {
    applies: (l, n) => n === 1 && l.activation != null && activationVjp(l.activation.getClassName().toLowerCase()) != null,
    vjp: (l, ctx) => [fusedActivation(l, ctx)],
    window: keepsBox,
  },
  MaxPooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: maxPoolGrad,
    window: tilingPool,
    windowVjp: poolWindow(maxPoolGrad),
  },
  AveragePooling2D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: avgPoolGrad,
    window: tilingPool,
    windowVjp: poolWindow(avgPoolGrad),
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
    vjp: upSamplingGrad,
    window: (l) => (l.interpolation === 'nearest' ? null : 'bilinear up-sampling'),
    windowVjp: (l, ctx) => {
      // Nearest, integer size (the window rule): y[i] = x[⌊i/s⌋]; the box widened to whole blocks.
      const [sy, sx] = pair(l.size, 2);
      const aligned = alignWindowed(ctx.dy, sy, sx);
      const a = aligned.box;
      const inBox: GridBox = [
        [a[0][0] / sy, a[0][1] / sy],
        [a[1][0] / sx, a[1][1] / sx],
      ];
      const [grad] = upSamplingGrad(l, { dy: aligned.t, inputs: [ctx.input(inBox)], output: aligned.t, want: [true], linear: ctx.linear });
      return { t: grad as tf.Tensor, box: inBox };
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
    window: (l) => (l.axis === -1 || l.axis === 3 ? null : 'concat along a spatial axis'),
  },
  Add: {
    applies: () => true,
    vjp: (_l, ctx) => ctx.inputs.map((_, i) => (ctx.want[i] ? ctx.dy : null)),
    window: keepsBox,
  },
  Multiply: {
    applies: () => true,
    vjp: (_l, ctx) => ctx.inputs.map((_, i) => (ctx.want[i] ? ctx.inputs.reduce((g, t, j) => (j === i ? g : tf.mul(g, t)), ctx.dy) : null)),
    window: keepsBox,
  },
  Flatten: { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [tf.reshape(ctx.dy, withBatch(ctx.inputs[0].shape, ctx.dy.shape[0]))] },
  Reshape: { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [tf.reshape(ctx.dy, withBatch(ctx.inputs[0].shape, ctx.dy.shape[0]))] },
};
Object.assign(RULES, RULES_3D);
// Layers that are the identity at inference.
for (const name of ['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']) {
  RULES[name] = { applies: (_l, n) => n === 1, vjp: (_l, ctx) => [ctx.dy], window: keepsBox };
}
