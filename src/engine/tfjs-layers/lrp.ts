import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { Objective, RelevanceOptions } from '../contract.js';
import {
  alphaBetaRule,
  epsilonRule,
  firstLayerRule,
  noFirstLayer,
  proportionalRule,
  routeBack,
  sumRule,
  type LinearOp,
} from '../tfjs/lrp-rules.js';
import type { GraphStep, LayersGraph } from './graph.js';

/*
 * LRP over a LayersModel's node graph (src/methods/lrp.ts describes the method): one rule per
 * layer class, chosen by class; a BatchNormalization right after a linear layer (its only
 * reader, no activation in between) is folded into that layer first.
 */

export const LINEAR = ['Conv2D', 'Conv2DTranspose', 'DepthwiseConv2D', 'Dense'];
const IDENTITY = ['ReLU', 'LeakyReLU', 'ELU', 'Activation', 'Softmax', 'Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout'];
const ROUTE = ['MaxPooling2D', 'GlobalMaxPooling2D', 'Reshape', 'Flatten', 'ZeroPadding2D', 'Cropping2D'];
const PROPORTIONAL = ['AveragePooling2D', 'GlobalAveragePooling2D', 'UpSampling2D'];
const OTHER = ['BatchNormalization', 'Add', 'Concatenate'];
/** Layer types LRP propagates through. */
export const LRP_LAYERS: readonly string[] = [...LINEAR, ...OTHER, ...IDENTITY, ...ROUTE, ...PROPORTIONAL];
/** Element-wise activations relevance passes through unchanged (rectifier-like: monotone, zero-preserving). */
const PASS_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'leakyrelu']);

/** LRP met a layer it has no rule for; names the layer. */
export class UnsupportedLayerError extends SegGradCamError {
  constructor(
    readonly layerName: string,
    readonly layerType: string,
    detail = '',
  ) {
    super(`LRP has no rule for layer '${layerName}' (${layerType}${detail}); supported: ${LRP_LAYERS.join(', ')}`, 'model');
    this.name = 'UnsupportedLayerError';
  }
}

/**
 * The relevance of every input value, [B, H, W, C] (signed), walking the layers from the logits
 * back to the input; the caller owns it. Every layer is checked before any tensor work.
 */
export function layersRelevance(graph: LayersGraph, input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D {
  const { rule, epsilon, alpha, beta } = options;
  checkSupported(graph);
  // The first-layer rule (z⁺, zᴮ) applies to the linear layers that read the model input.
  const first = firstLayerRule(options);
  const readers = graph.steps.filter((st) => st.inputIds.includes(graph.inputId));
  if (first && !readers.some((st) => LINEAR.includes(st.layer.getClassName())))
    throw noFirstLayer(options.firstLayer, readers[0]?.layer.name ?? 'no layer');

  return tf.tidy(() => {
    const values = graph.run(new Map([[graph.inputId, input]]));
    values.set(graph.inputId, input);
    const logits = values.get(graph.outputId) as tf.Tensor;
    const relevance = new Map<number, tf.Tensor>([
      [graph.outputId, tf.mul(logits, tf.tensor(objective.weights, [1, ...logits.shape.slice(1)]))],
    ]);
    const readerCount = readerCounts(graph);
    const producer = new Map<number, number>();
    graph.steps.forEach((s, i) => s.outputIds.forEach((id) => producer.set(id, i)));
    const folded = new Set<number>();
    const linearRule = (op: LinearOp, a: tf.Tensor, r: tf.Tensor, readsInput: boolean) =>
      first && readsInput ? first(op, a, r) : rule === 'epsilon' ? epsilonRule(op, a, r, epsilon) : alphaBetaRule(op, a, r, alpha, beta);

    for (let i = graph.steps.length - 1; i >= 0; i--) {
      const step = graph.steps[i];
      const r = relevance.get(step.outputIds[0]);
      if (folded.has(i) || !r) continue;
      const type = step.layer.getClassName();
      const ins = step.inputIds.map((id) => values.get(id) as tf.Tensor);
      let targets = step.inputIds;
      let out: tf.Tensor[];
      if (LINEAR.includes(type)) {
        out = [linearRule(linearOp(step, values), ins[0], r, step.inputIds[0] === graph.inputId)];
      } else if (type === 'BatchNormalization') {
        const p = producer.get(step.inputIds[0]);
        const prev = p == null ? undefined : graph.steps[p];
        if (
          prev &&
          LINEAR.includes(prev.layer.getClassName()) &&
          activationOf(prev) === 'linear' &&
          readerCount.get(step.inputIds[0]) === 1
        ) {
          folded.add(p as number);
          targets = prev.inputIds;
          out = [
            linearRule(
              foldBatchNorm(linearOp(prev, values), prev, step),
              values.get(prev.inputIds[0]) as tf.Tensor,
              r,
              prev.inputIds[0] === graph.inputId,
            ),
          ];
        } else {
          out = [epsilonRule(batchNormOp(step), ins[0], r, epsilon)];
        }
      } else if (IDENTITY.includes(type)) {
        out = [r];
      } else if (ROUTE.includes(type)) {
        out = [routeBack((x) => callOne(step, x), ins[0], r)];
      } else if (PROPORTIONAL.includes(type)) {
        out = [proportionalRule((x) => callOne(step, x), ins[0], r, rule === 'epsilon' ? epsilon : 0)];
      } else if (type === 'Add') {
        out = sumRule(ins, r, rule === 'epsilon' ? { kind: 'epsilon', epsilon } : { kind: 'alpha-beta', alpha, beta });
      } else if (type === 'Concatenate') {
        const axis = (config(step).axis as number | undefined) ?? -1;
        const ax = axis < 0 ? r.rank + axis : axis;
        out = tf.split(
          r,
          ins.map((t) => t.shape[ax]),
          ax,
        );
      } else {
        throw new UnsupportedLayerError(step.layer.name, type);
      }
      targets.forEach((id, k) => {
        const prev = relevance.get(id);
        relevance.set(id, prev ? tf.add(prev, out[k]) : out[k]);
      });
    }
    return (relevance.get(graph.inputId) ?? tf.zerosLike(input)) as tf.Tensor4D;
  });
}

/** Throws UnsupportedLayerError for the first layer without a rule (before any work). */
function checkSupported(graph: LayersGraph): void {
  for (const step of graph.steps) {
    const type = step.layer.getClassName();
    const name = step.layer.name;
    if (!LRP_LAYERS.includes(type)) throw new UnsupportedLayerError(name, type);
    if (step.outputIds.length !== 1) throw new UnsupportedLayerError(name, type, ', several outputs');
    const isOutput = step.outputIds.includes(graph.outputId);
    const act = activationOf(step);
    if (!PASS_ACTIVATIONS.has(act) && !(isOutput && (act === 'softmax' || act === 'sigmoid'))) {
      throw new UnsupportedLayerError(name, type, ` with activation ${act}`);
    }
    const c = config(step);
    if (c.dataFormat === 'channelsFirst') throw new UnsupportedLayerError(name, type, ', channelsFirst');
    if (type === 'BatchNormalization' && c.axis !== -1 && c.axis !== 3)
      throw new UnsupportedLayerError(name, type, `, axis ${String(c.axis)}`);
  }
}

function readerCounts(graph: LayersGraph): Map<number, number> {
  const n = new Map<number, number>();
  for (const s of graph.steps) for (const id of s.inputIds) n.set(id, (n.get(id) ?? 0) + 1);
  return n;
}

function config(step: GraphStep): Record<string, unknown> {
  return (step.layer as unknown as tf.layers.Layer).getConfig() as Record<string, unknown>;
}

/** A layer's element-wise activation, lower case ('linear' when it has none). */
function activationOf(step: GraphStep): string {
  const type = step.layer.getClassName();
  if (type === 'Activation') return String(config(step).activation ?? 'linear').toLowerCase();
  if (type === 'Softmax') return 'softmax';
  if (type === 'ReLU') return 'relu';
  if (type === 'LeakyReLU') return 'leakyrelu';
  if (type === 'ELU') return 'elu';
  return step.layer.activation?.getClassName().toLowerCase() ?? 'linear';
}

function callOne(step: GraphStep, x: tf.Tensor): tf.Tensor {
  const y = step.layer.call(x, {});
  return Array.isArray(y) ? y[0] : y;
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, (v[1] ?? v[0]) as number] : [v as number, v as number]);

/** The linear part (pre-activation) of a Conv2D, Conv2DTranspose, DepthwiseConv2D or Dense layer. */
export function linearOp(step: GraphStep, values: Map<number, tf.Tensor>): LinearOp {
  const type = step.layer.getClassName();
  const c = config(step);
  const ws = (step.layer as unknown as tf.layers.Layer).getWeights();
  const kernel = ws[0];
  const bias = c.useBias === false ? null : (ws[1] ?? null);
  const withBias = (z: tf.Tensor, b: tf.Tensor | null) => (b ? tf.add(z, b) : z);
  const strides = pair(c.strides ?? 1);
  const dilations = pair(c.dilationRate ?? 1);
  const padding = c.padding as 'same' | 'valid';
  switch (type) {
    case 'Conv2D':
      return {
        kernel,
        bias,
        apply: (a, k, b) => withBias(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, strides, padding, 'NHWC', dilations), b),
      };
    case 'DepthwiseConv2D':
      return {
        kernel,
        bias,
        apply: (a, k, b) => withBias(tf.depthwiseConv2d(a as tf.Tensor4D, k as tf.Tensor4D, strides, padding, 'NHWC', dilations), b),
      };
    case 'Conv2DTranspose': {
      const declared = step.outputShapes[0].slice(1);
      const outShape = (declared.every((d) => d != null) ? declared : (values.get(step.outputIds[0]) as tf.Tensor).shape.slice(1)) as [
        number,
        number,
        number,
      ];
      return {
        kernel,
        bias,
        apply: (a, k, b) =>
          withBias(tf.conv2dTranspose(a as tf.Tensor4D, k as tf.Tensor4D, [a.shape[0], ...outShape], strides, padding), b),
      };
    }
    case 'Dense':
      return {
        kernel,
        bias,
        apply: (a, k, b) => {
          const [n, m] = k.shape;
          const flat = tf.matMul(a.reshape([-1, n]), k as tf.Tensor2D);
          return withBias(flat.reshape([...a.shape.slice(0, -1), m]), b);
        },
      };
    default:
      throw new UnsupportedLayerError(step.layer.name, type);
  }
}

/** BatchNormalization (inference) as y = a · scale + shift per channel. */
export function batchNormParams(step: GraphStep): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const c = config(step);
  const ws = (step.layer as unknown as tf.layers.Layer).getWeights();
  // Weights in build order: gamma (if scale), beta (if center), moving mean, moving variance.
  const gamma = c.scale === false ? null : ws[0];
  const beta = c.center === false ? null : ws[c.scale === false ? 0 : 1];
  const [mean, variance] = ws.slice(-2);
  const scale = tf.div(gamma ?? tf.onesLike(mean), tf.sqrt(tf.add(variance, (c.epsilon as number) ?? 1e-3))) as tf.Tensor1D;
  const shift = tf.sub(beta ?? tf.zerosLike(mean), tf.mul(mean, scale)) as tf.Tensor1D;
  return { scale, shift };
}

function batchNormOp(step: GraphStep): LinearOp {
  const { scale, shift } = batchNormParams(step);
  return { kernel: scale, bias: shift, apply: (a, k, b) => (b ? tf.add(tf.mul(a, k), b) : tf.mul(a, k)) };
}

/** W' = W · scale along the output channels, b' = b · scale + shift. */
function foldBatchNorm(op: LinearOp, linear: GraphStep, bn: GraphStep): LinearOp {
  const { scale, shift } = batchNormParams(bn);
  const k = op.kernel;
  let s: tf.Tensor;
  switch (linear.layer.getClassName()) {
    case 'DepthwiseConv2D': // [kh, kw, in, multiplier]; output channel = in · multiplier + m
      s = scale.reshape([k.shape[2] as number, k.shape[3] as number]);
      break;
    case 'Conv2DTranspose': // [kh, kw, out, in]
      s = scale.reshape([k.shape[2] as number, 1]);
      break;
    default: // [kh, kw, in, out] or [in, out]
      s = scale;
  }
  const bias = tf.add(op.bias ? tf.mul(op.bias, scale) : tf.zerosLike(shift), shift);
  return { kernel: tf.mul(k, s), bias, apply: op.apply };
}
