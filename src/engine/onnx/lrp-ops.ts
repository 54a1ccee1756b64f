/**
 * ONNX ops written with TF.js ops on NCHW tensors, for LRP on ONNX models (./lrp.ts): the forward values and the
 * per-op rules are computed in TF.js (synchronously, differentiably), from the model's initializers. Each op gets
 * the rule kind the GraphModel engine gives its TF counterpart (../tfjs-graph/lrp-plan.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { LinearOp } from '../tfjs/lrp-rules.js';
import type { GraphAnalysis } from './analysis.js';
import { attrFloat, attrInt, attrInts, attrString, nodeLabel } from './builder.js';
import type { NodeProto } from './proto.js';

export type OnnxRuleKind = 'linear' | 'folded-bias' | 'pass' | 'affine' | 'sum' | 'route' | 'proportional';

const LINEAR = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'];
const PASS = ['Relu', 'LeakyRelu', 'Elu', 'Selu', 'PRelu', 'Sigmoid', 'Tanh', 'Identity', 'Dropout', 'Clip'];
const ROUTE = ['MaxPool', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Concat'];
const PROPORTIONAL = ['AveragePool', 'GlobalAveragePool', 'ReduceMean', 'ReduceSum', 'Resize', 'Upsample'];
const AFFINE = ['Sub', 'Mul', 'Div', 'BatchNormalization'];

/** Ops ONNX LRP propagates through. */
export const LRP_ONNX_OPS: readonly string[] = [...LINEAR, 'Add', ...AFFINE, ...PASS, ...ROUTE, ...PROPORTIONAL];

/** LRP met an ONNX node it has no rule for (or an attribute it does not handle); names the node and its op. */
export class UnsupportedOnnxOpError extends SegGradCamError {
  constructor(
    readonly node: NodeProto,
    detail = '',
  ) {
    super(
      `LRP has no rule for ONNX node '${nodeLabel(node)}' (op ${node.opType}${detail}); supported ops: ${LRP_ONNX_OPS.join(', ')}`,
      'model',
    );
    this.name = 'UnsupportedOnnxOpError';
  }
}

/** The rule kind of a node and its data inputs that receive relevance (the others are constants). */
export function ruleKind(an: GraphAnalysis, node: NodeProto, variable: string[]): OnnxRuleKind {
  const op = node.opType;
  if (variable.length === 0) throw new UnsupportedOnnxOpError(node, ', no data input');
  if (LINEAR.includes(op)) {
    if (variable.length !== 1 || variable[0] !== node.input[0]) throw new UnsupportedOnnxOpError(node, ', weights that are not constants');
    return 'linear';
  }
  if (PASS.includes(op)) return 'pass';
  if (ROUTE.includes(op)) return 'route';
  if (PROPORTIONAL.includes(op)) {
    if (variable.length !== 1) throw new UnsupportedOnnxOpError(node, ', several data inputs');
    return 'proportional';
  }
  if (op === 'Add') {
    if (variable.length > 1) return 'sum';
    const producer = an.producer.get(variable[0]);
    const readers = an.consumers.get(variable[0]) ?? [];
    const takesBias =
      !!producer &&
      readers.length === 1 &&
      ((producer.opType === 'MatMul' && !producer.input[2]) || (producer.opType === 'Conv' && !producer.input[2]));
    return takesBias ? 'folded-bias' : 'affine';
  }
  if (AFFINE.includes(op)) {
    const firstOnly = op === 'Div' || op === 'BatchNormalization';
    if (variable.length !== 1 || (firstOnly && variable[0] !== node.input[0]))
      throw new UnsupportedOnnxOpError(node, ', not an affine map of one tensor');
    return 'affine';
  }
  throw new UnsupportedOnnxOpError(node);
}

const nhwc = (x: tf.Tensor) => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
const nchw = (x: tf.Tensor) => tf.transpose(x, [0, 3, 1, 2]) as tf.Tensor4D;

/** Explicit NCHW-ONNX pads [top, left, bottom, right] as TF.js NHWC padding, 'same' for SAME_UPPER. */
function padding(node: NodeProto): 'same' | [[number, number], [number, number], [number, number], [number, number]] {
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER') return 'same';
  if (auto === 'SAME_LOWER') throw new UnsupportedOnnxOpError(node, ', auto_pad SAME_LOWER');
  const p = auto === 'VALID' ? [0, 0, 0, 0] : (attrInts(node, 'pads') ?? [0, 0, 0, 0]);
  if (p.length !== 4) throw new UnsupportedOnnxOpError(node, ', not 2-D');
  return [
    [0, 0],
    [p[0], p[2]],
    [p[1], p[3]],
    [0, 0],
  ];
}

/**
 * The linear part of a Conv, ConvTranspose, Gemm or MatMul node: z = apply(a, kernel, bias), the kernel in ONNX
 * layout (so the αβ-rule can swap in W⁺ and W⁻), `foldedBias` a constant Add right after it.
 */
export function onnxLinearOp(an: GraphAnalysis, node: NodeProto, foldedBias: tf.Tensor | null): LinearOp {
  const constant = (name: string | undefined) => {
    const c = name ? an.constant(name) : null;
    return c ? tf.tensor(Float32Array.from(c.data, Number), c.dims) : null;
  };
  const kernel = constant(node.input[1]);
  if (!kernel) throw new UnsupportedOnnxOpError(node, ', weights that are not constants');
  const ownBias = constant(node.input[2]);
  const outShape = an.shape(node.output[0]);
  switch (node.opType) {
    case 'Conv': {
      if (kernel.rank !== 4) throw new UnsupportedOnnxOpError(node, ', not 2-D');
      const strides = (attrInts(node, 'strides') ?? [1, 1]) as [number, number];
      const dilations = (attrInts(node, 'dilations') ?? [1, 1]) as [number, number];
      const group = attrInt(node, 'group', 1);
      const pad = padding(node);
      const bias = ownBias ? ownBias.reshape([1, -1, 1, 1]) : foldedBias;
      const cin = an.shape(node.input[0])[1];
      const apply = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor | null) => {
        const x = nhwc(a);
        let z: tf.Tensor4D;
        if (group === 1) {
          z = tf.conv2d(x, tf.transpose(k, [2, 3, 1, 0]) as tf.Tensor4D, strides, pad, 'NHWC', dilations);
        } else if (group === cin && k.shape[1] === 1) {
          // Depthwise: output channel i·m + j reads input channel i.
          const [o, , kh, kw] = k.shape;
          const dk = tf.transpose(k, [2, 3, 0, 1]).reshape([kh, kw, cin, o / cin]) as tf.Tensor4D;
          z = tf.depthwiseConv2d(x, dk, strides, pad, 'NHWC', dilations);
        } else {
          const xs = tf.split(x, group, 3) as tf.Tensor4D[];
          const ks = tf.split(k, group, 0);
          z = tf.concat(
            xs.map((xi, i) => tf.conv2d(xi, tf.transpose(ks[i], [2, 3, 1, 0]) as tf.Tensor4D, strides, pad, 'NHWC', dilations)),
            3,
          ) as tf.Tensor4D;
        }
        const out = nchw(z);
        return b ? tf.add(out, b) : out;
      };
      return { kernel, bias, apply };
    }
    case 'ConvTranspose': {
      const strides = (attrInts(node, 'strides') ?? [1, 1]) as [number, number];
      const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
      const unsupported =
        kernel.rank !== 4 ||
        attrInt(node, 'group', 1) !== 1 ||
        (attrInts(node, 'dilations') ?? [1, 1]).some((d) => d !== 1) ||
        (attrInts(node, 'output_padding') ?? [0, 0]).some((d) => d !== 0) ||
        attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET';
      if (unsupported) throw new UnsupportedOnnxOpError(node, ', groups, dilations, output padding or auto_pad');
      const bias = ownBias ? ownBias.reshape([1, -1, 1, 1]) : foldedBias;
      const apply = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor | null) => {
        const [, , h, w] = a.shape;
        const [, o, kh, kw] = k.shape;
        const full = [a.shape[0], (h - 1) * strides[0] + kh, (w - 1) * strides[1] + kw, o] as [number, number, number, number];
        const z = tf.conv2dTranspose(nhwc(a), tf.transpose(k, [2, 3, 1, 0]) as tf.Tensor4D, full, strides, 'valid');
        const cut = tf.slice(z, [0, pads[0], pads[1], 0], [-1, outShape[2], outShape[3], -1]);
        const out = nchw(cut);
        return b ? tf.add(out, b) : out;
      };
      return { kernel, bias, apply };
    }
    case 'Gemm': {
      if (attrInt(node, 'transA', 0) !== 0 || kernel.rank !== 2) throw new UnsupportedOnnxOpError(node, ', transA');
      const transB = attrInt(node, 'transB', 0) === 1;
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const scaled = tf.mul(kernel, alpha);
      kernel.dispose();
      const bias = ownBias ? tf.mul(ownBias, beta) : foldedBias;
      return { kernel: scaled, bias, apply: (a, k, b) => tf.add(tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D, false, transB), b ?? 0) };
    }
    default: {
      if (kernel.rank !== 2 || an.shape(node.input[0]).length !== 2) throw new UnsupportedOnnxOpError(node, ', not a 2-D product');
      return { kernel, bias: foldedBias, apply: (a, k, b) => tf.add(tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D), b ?? 0) };
    }
  }
}

/**
 * A non-linear-layer node run in TF.js on NCHW tensors: `inputs` its inputs (data tensors given, constants read
 * from the model), the output shape from the analysis. Differentiable in the data inputs.
 */
export function runOnnxNode(an: GraphAnalysis, node: NodeProto, inputs: Array<tf.Tensor | null>): tf.Tensor {
  const op = node.opType;
  const outShape = an.shape(node.output[0]);
  const x = inputs[0] as tf.Tensor;
  const constant = (i: number): tf.Tensor => {
    if (inputs[i]) return inputs[i] as tf.Tensor;
    const c = an.constant(node.input[i]);
    if (!c) throw new UnsupportedOnnxOpError(node, `, input ${i} unknown`);
    return tf.tensor(Float32Array.from(c.data, Number), c.dims);
  };
  switch (op) {
    case 'Relu':
      return tf.relu(x);
    case 'LeakyRelu':
      return tf.leakyRelu(x, attrFloat(node, 'alpha', 0.01));
    case 'Elu':
      return tf.elu(x);
    case 'Selu':
      return tf.selu(x);
    case 'PRelu':
      return tf.prelu(x, constant(1));
    case 'Sigmoid':
      return tf.sigmoid(x);
    case 'Tanh':
      return tf.tanh(x);
    case 'Identity':
    case 'Dropout':
      return x;
    case 'Clip': {
      const lo = node.input[1] ? (an.numbers(node.input[1])?.[0] ?? -Infinity) : attrFloat(node, 'min', -3.4e38);
      const hi = node.input[2] ? (an.numbers(node.input[2])?.[0] ?? Infinity) : attrFloat(node, 'max', 3.4e38);
      return tf.clipByValue(x, lo, hi);
    }
    case 'MaxPool':
    case 'AveragePool': {
      const k = attrInts(node, 'kernel_shape') ?? [];
      const strides = (attrInts(node, 'strides') ?? [1, 1]) as [number, number];
      const pad = padding(node);
      if (k.length !== 2 || (attrInts(node, 'dilations') ?? [1, 1]).some((d) => d !== 1))
        throw new UnsupportedOnnxOpError(node, ', not a 2-D pooling without dilation');
      const padded = pad === 'same' ? null : pad;
      if (op === 'AveragePool' && padded && padded.flat().some((p) => p !== 0))
        throw new UnsupportedOnnxOpError(node, ', explicit padding');
      let v = nhwc(x);
      if (padded && padded.flat().some((p) => p !== 0)) v = tf.pad(v, padded, -3.4e38);
      const y =
        op === 'MaxPool'
          ? tf.maxPool(v, k as [number, number], strides, pad === 'same' ? 'same' : 'valid')
          : tf.avgPool(v, k as [number, number], strides, pad === 'same' ? 'same' : 'valid');
      if (y.shape[1] !== outShape[2] || y.shape[2] !== outShape[3]) throw new UnsupportedOnnxOpError(node, ', ceil_mode');
      return nchw(y);
    }
    case 'GlobalAveragePool':
      return tf.mean(x, [2, 3], true);
    case 'ReduceMean':
    case 'ReduceSum': {
      const axes = (attrInts(node, 'axes') ?? an.numbers(node.input[1]) ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + x.rank : a));
      const keep = attrInt(node, 'keepdims', 1) === 1;
      return op === 'ReduceMean' ? tf.mean(x, axes, keep) : tf.sum(x, axes, keep);
    }
    case 'Reshape':
    case 'Flatten':
    case 'Squeeze':
    case 'Unsqueeze':
      return tf.reshape(x, outShape);
    case 'Transpose':
      return tf.transpose(x, attrInts(node, 'perm'));
    case 'Concat': {
      let axis = attrInt(node, 'axis', 1);
      if (axis < 0) axis += x.rank;
      return tf.concat(
        node.input.map((_, i) => constant(i)),
        axis,
      );
    }
    case 'Resize':
    case 'Upsample':
      return resize(an, node, x, outShape);
    case 'Add':
      return tf.add(constant(0), constant(1));
    case 'Sub':
      return tf.sub(constant(0), constant(1));
    case 'Mul':
      return tf.mul(constant(0), constant(1));
    case 'Div':
      return tf.div(constant(0), constant(1));
    case 'BatchNormalization': {
      const [scale, b, mean, variance] = [1, 2, 3, 4].map((i) => constant(i).reshape([1, -1, 1, 1]));
      const eps = attrFloat(node, 'epsilon', 1e-5);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), scale), b);
    }
    default:
      throw new UnsupportedOnnxOpError(node);
  }
}

/** Resize/Upsample (2-D, spatial axes only): nearest (asymmetric, floor) or linear (half_pixel, pytorch_half_pixel, align_corners). */
function resize(an: GraphAnalysis, node: NodeProto, x: tf.Tensor, outShape: number[]): tf.Tensor {
  const mode = attrString(node, 'mode', 'nearest');
  const transform = node.opType === 'Upsample' ? 'asymmetric' : attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const size: [number, number] = [outShape[2], outShape[3]];
  if (x.rank !== 4 || outShape[0] !== x.shape[0] || outShape[1] !== x.shape[1]) throw new UnsupportedOnnxOpError(node, ', not spatial');
  const v = nhwc(x);
  if (mode === 'nearest') {
    // Asymmetric coordinates with floor (PyTorch's export; Upsample's only nearest) pick TF's source pixels.
    if (transform !== 'asymmetric' || !(nearest === 'floor' || node.opType === 'Upsample'))
      throw new UnsupportedOnnxOpError(node, `, nearest with ${transform}/${nearest}`);
    return nchw(tf.image.resizeNearestNeighbor(v, size, false, false));
  }
  if (mode === 'linear') {
    if (transform === 'align_corners') return nchw(tf.image.resizeBilinear(v, size, true, false));
    if (transform === 'half_pixel' || transform === 'pytorch_half_pixel') return nchw(tf.image.resizeBilinear(v, size, false, true));
    if (transform === 'asymmetric') return nchw(tf.image.resizeBilinear(v, size, false, false));
  }
  void an;
  throw new UnsupportedOnnxOpError(node, `, ${mode} with ${transform}`);
}
