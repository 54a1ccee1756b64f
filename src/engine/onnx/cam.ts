import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { LayerInfo } from '../contract.js';
import type { GraphAnalysis } from './analysis.js';
import { attrFloat, attrInt, attrInts, attrString, nodeLabel } from './builder.js';
import type { NodeProto } from './proto.js';

/** Nodes between the pooling and the linear head that only reshape a [1, K] vector. */
const RESHAPES = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout']);

/**
 * CAM's head kernel on an ONNX model (the adapter's `headKernel` capability): tensor `layer` [1, K, h, w] must
 * feed only a global average pooling (GlobalAveragePool, ReduceMean over axes 2 and 3, or an AveragePool whose
 * window is the whole map without padding), then, through Flatten/Reshape/Squeeze, a Gemm or MatMul by constant
 * weights (a Gemm's bias, or an Add of a constant after a MatMul) that is the logits. Returns the kernel as
 * [K, C] (a Gemm's alpha and transB applied); the caller owns it. Throws a SegGradCamError naming what is missing.
 */
export function onnxHeadKernel(an: GraphAnalysis, logits: string, layer: LayerInfo): tf.Tensor2D {
  const need = `CAM needs a global-average-pooling + linear head: tensor '${layer.name}' must feed only a GlobalAveragePool (or a ReduceMean over height and width), then a Gemm/MatMul by constant weights that is the model output`;
  const fail = (why: string) => new SegGradCamError(`${need} (${why})`, 'model');
  const cone = an.ancestors(logits);
  const onlyReader = (tensor: string): NodeProto => {
    const readers = (an.consumers.get(tensor) ?? []).filter((n) => n.output.some((o) => cone.has(o)));
    if (readers.length !== 1) throw fail(`'${tensor}' has ${readers.length} readers`);
    return readers[0];
  };
  if (layer.name === logits) throw fail(`'${layer.name}' is the model output`);
  const pool = onlyReader(layer.name);
  if (!isGlobalAverage(an, pool, layer.name)) throw fail(`'${nodeLabel(pool)}' (${pool.opType}) is not a global average pooling`);
  let head = onlyReader(pool.output[0]);
  while (RESHAPES.has(head.opType)) head = onlyReader(head.output[0]);
  const k = an.shape(layer.name)[1];
  let kernel: tf.Tensor2D;
  if (head.opType === 'Gemm') {
    const b = an.constant(head.input[1]);
    if (attrInt(head, 'transA', 0) !== 0 || !b || b.dims.length !== 2)
      throw fail(`'${nodeLabel(head)}' (Gemm) does not multiply by constant weights`);
    const w = tf.tensor2d(Float32Array.from(b.data, Number), b.dims as [number, number]);
    const alpha = attrFloat(head, 'alpha', 1);
    kernel = tf.tidy(() => tf.mul(attrInt(head, 'transB', 0) === 1 ? tf.transpose(w) : w, alpha)) as tf.Tensor2D;
    w.dispose();
  } else if (head.opType === 'MatMul') {
    const b = an.constant(head.input[1]);
    if (!b || b.dims.length !== 2) throw fail(`'${nodeLabel(head)}' (MatMul) does not multiply by constant weights`);
    kernel = tf.tensor2d(Float32Array.from(b.data, Number), b.dims as [number, number]);
    if (head.output[0] !== logits) {
      const add = onlyReader(head.output[0]);
      if (add.opType === 'Add' && add.input.some((i) => an.constant(i) != null)) head = add;
    }
  } else {
    throw fail(`'${nodeLabel(head)}' (${head.opType}) is not a Gemm or MatMul`);
  }
  if (head.output[0] !== logits || kernel.shape[0] !== k) {
    const why =
      head.output[0] !== logits ? `'${nodeLabel(head)}' is not the model output` : `the kernel has ${kernel.shape[0]} rows, not ${k}`;
    kernel.dispose();
    throw fail(why);
  }
  return kernel;
}

/** GlobalAveragePool, ReduceMean over axes 2 and 3 (attribute or, from opset 18, input), or a whole-map AveragePool. */
function isGlobalAverage(an: GraphAnalysis, node: NodeProto, input: string): boolean {
  if (node.input[0] !== input) return false;
  if (node.opType === 'GlobalAveragePool') return true;
  if (node.opType === 'ReduceMean') {
    const axes = attrInts(node, 'axes') ?? an.numbers(node.input[1]);
    if (!axes) return false;
    const set = new Set(axes.map((a) => (a < 0 ? a + 4 : a)));
    return set.size === 2 && set.has(2) && set.has(3);
  }
  if (node.opType === 'AveragePool') {
    const [, , h, w] = an.shape(input);
    const kernel = attrInts(node, 'kernel_shape') ?? [];
    const pads = attrInts(node, 'pads') ?? [];
    const autoPad = attrString(node, 'auto_pad', 'NOTSET');
    return kernel[0] === h && kernel[1] === w && pads.every((p) => p === 0) && (autoPad === 'NOTSET' || autoPad === 'VALID');
  }
  return false;
}
