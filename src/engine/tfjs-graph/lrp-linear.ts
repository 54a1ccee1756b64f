import * as tf from '@tensorflow/tfjs';
import { nodeOfTensor, type GraphNode, type GraphView } from './view.js';
import { fusedOps, isFused } from './lrp-plan.js';
import type { LinearOp } from '../tfjs/lrp-rules.js';

type Padding = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

const attr = <T>(node: GraphNode, name: string): T | undefined => node.attrParams[name]?.value as T | undefined;
/** [1, sh, sw, 1]-style attributes (strides, dilations) as [sh, sw]. */
const spatial = (v: number[] | undefined): [number, number] => (v && v.length === 4 ? [v[1], v[2]] : [1, 1]);

function padding(node: GraphNode): Padding {
  const pad = String(attr<string>(node, 'pad') ?? 'valid').toLowerCase();
  if (pad !== 'explicit') return pad as 'same' | 'valid';
  const p = attr<number[]>(node, 'explicitPaddings') ?? [];
  return [
    [0, 0],
    [p[2], p[3]],
    [p[4], p[5]],
    [0, 0],
  ];
}

/**
 * The linear part z = apply(a, kernel, bias) of a convolution or matrix product node, written
 * with the tf ops the converter itself runs for it, so the αβ-rule can swap in W⁺ and W⁻. The
 * bias is the fused BiasAdd's, or `foldedBias` (a constant added right after the node); a fused
 * activation is not part of it (relevance passes through it).
 */
export function graphLinearOp(view: GraphView, node: GraphNode, output: tf.Tensor, foldedBias: tf.Tensor | null): LinearOp {
  const constant = (index: number) => view.constant(nodeOfTensor(node.inputNames[index])) as tf.Tensor;
  const fusedBias = isFused(node) && fusedOps(node)[0] === 'biasadd' ? constant(2) : null;
  const bias = fusedBias ?? foldedBias;
  const withBias = (z: tf.Tensor, b: tf.Tensor | null) => (b ? tf.add(z, b) : z);
  const strides = spatial(attr<number[]>(node, 'strides'));
  const dilations = spatial(attr<number[]>(node, 'dilations'));
  const pad = padding(node);
  switch (node.op) {
    case 'Conv2D':
    case '_FusedConv2D':
      return {
        kernel: constant(1),
        bias,
        apply: (a, k, b) => withBias(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, strides, pad, 'NHWC', dilations), b),
      };
    case 'DepthwiseConv2dNative':
    case 'DepthwiseConv2d':
    case 'FusedDepthwiseConv2dNative':
      return {
        kernel: constant(1),
        bias,
        apply: (a, k, b) => withBias(tf.depthwiseConv2d(a as tf.Tensor4D, k as tf.Tensor4D, strides, pad, 'NHWC', dilations), b),
      };
    case 'Conv2DBackpropInput': {
      const outShape = output.shape.slice(1) as [number, number, number];
      return {
        kernel: constant(1),
        bias,
        apply: (a, k, b) => withBias(tf.conv2dTranspose(a as tf.Tensor4D, k as tf.Tensor4D, [a.shape[0], ...outShape], strides, pad), b),
      };
    }
    default: {
      // MatMul, _FusedMatMul: x · W (or x · Wᵀ).
      const transposeB = attr<boolean>(node, 'transposeB') === true;
      return {
        kernel: constant(1),
        bias,
        apply: (a, k, b) => withBias(tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D, false, transposeB), b),
      };
    }
  }
}
