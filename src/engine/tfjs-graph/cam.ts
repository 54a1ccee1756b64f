import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { LayerInfo } from '../contract.js';
import { nodeOfTensor, type GraphNode, type GraphView } from './view.js';
import { fusedOps } from './lrp-plan.js';

/** Nodes between the pooling and the linear head that only reshape a [1, K] vector. */
const RESHAPES = ['Reshape', 'Squeeze', 'Identity', 'Snapshot'];
const BIAS_ADDS = ['Add', 'AddV2', 'BiasAdd'];

/** CAM's head kernel for node `layer` (the adapter's `headKernel` capability); see graphCamKernel. */
export function graphHeadKernel(view: GraphView, layer: LayerInfo): tf.Tensor2D {
  const need = `CAM needs a global-average-pooling + linear head: node '${layer.name}' must feed only a Mean over height and width (or a whole-map AvgPool), then a MatMul that is the model output`;
  return graphCamKernel(view, layer.name, layer.outputShape, need);
}

/**
 * The linear head of a GraphModel classifier, read from the node `layer` [1, h, w, K]: it must
 * feed only a global average pooling (Mean over axes 1 and 2, or an AvgPool whose window is the
 * whole map), then, through reshapes, a MatMul by a constant kernel (fused or followed by a
 * constant bias) that is the logits node. Returns the kernel as [K, C]; the caller owns it.
 * Throws a SegGradCamError (`need` is its message) otherwise.
 */
export function graphCamKernel(view: GraphView, layer: string, layerShape: number[], need: string): tf.Tensor2D {
  const inCone = new Set(view.order);
  const fail = (why: string) => new SegGradCamError(`${need} (${why})`, 'model');
  const onlyReader = (n: GraphNode): GraphNode => {
    const readers = n.children.filter((c) => inCone.has(c.name));
    if (readers.length !== 1) throw fail(`'${n.name}' has ${readers.length} readers`);
    return readers[0];
  };
  const start = view.nodes[layer];
  if (!start) throw fail(`no node '${layer}'`);
  const pool = onlyReader(start);
  if (!isGlobalAverage(view, pool, layerShape)) throw fail(`'${pool.name}' (${pool.op}) is not a global average pooling`);
  let head = onlyReader(pool);
  while (RESHAPES.includes(head.op)) head = onlyReader(head);
  const isMatMul = head.op === 'MatMul' || (head.op === '_FusedMatMul' && fusedOps(head)[1] === '');
  const kernelNode = head.inputs[1];
  if (!isMatMul || kernelNode?.op !== 'Const' || head.attrParams.transposeA?.value === true) {
    throw fail(`'${head.name}' (${head.op}) is not a MatMul by constant weights`);
  }
  let last = head;
  if (last.name !== view.logitsNode) {
    const bias = onlyReader(last);
    if (BIAS_ADDS.includes(bias.op) && bias.inputs.some((n) => n.op === 'Const')) last = bias;
  }
  if (last.name !== view.logitsNode) throw fail(`'${last.name}' is not the model output`);
  const kernel = view.constant(nodeOfTensor(head.inputNames[1])) as tf.Tensor2D;
  return (head.attrParams.transposeB?.value === true ? tf.transpose(kernel) : kernel.clone()) as tf.Tensor2D;
}

/** Mean over height and width, or an AvgPool whose window covers the whole map. */
function isGlobalAverage(view: GraphView, node: GraphNode, shape: number[]): boolean {
  if (node.op === 'Mean') {
    const axes = view.constant(nodeOfTensor(node.inputNames[1]));
    if (!axes) return false;
    const set = new Set(Array.from(axes.dataSync(), (a) => (a < 0 ? a + 4 : a)));
    return set.size === 2 && set.has(1) && set.has(2);
  }
  if (node.op === 'AvgPool') {
    const k = node.attrParams.kernelSize?.value as number[] | undefined;
    return !!k && k[1] === shape[1] && k[2] === shape[2] && String(node.attrParams.pad?.value).toLowerCase() === 'valid';
  }
  return false;
}
