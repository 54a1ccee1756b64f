import * as tf from '@tensorflow/tfjs';
import { notSupported } from '../errors.js';
import { BIASED_ACTIVATIONS, type HookedRun, type RunHooks } from '../tfjs/hooks.js';
import { LINEAR_OPS, fusedOps, isFused } from './lrp-plan.js';
import { nodeOfTensor, outputIndexOf, type GraphNode, type GraphView } from './view.js';

/*
 * A GraphModel run node by node (each node executed alone on its inputs, as LRP runs them) with the hooks of guided
 * backpropagation and FullGrad (../tfjs/hooks.ts). Fused ops stay whole: a ReLU fused into a convolution is guided
 * through `reluOutput` on the node's output, and a fused bias is recorded at the node's output through its activation.
 * Biases: a fused BiasAdd, BiasAdd/Add/AddV2 of a constant, Sub of a constant (negated), FusedBatchNorm's effective bias
 * offset − mean·scale/√(variance + ε).
 */

const constantOf = (view: GraphView, tensorName: string) => view.constant(nodeOfTensor(tensorName));

/** The bias a node adds and the activation after it (null: none). */
function biasOf(view: GraphView, node: GraphNode): { bias: tf.Tensor; activation: string } | null {
  const isConst = (k: number) => node.inputs[k]?.op === 'Const';
  if (LINEAR_OPS.includes(node.op)) {
    if (!isFused(node)) return null;
    const [extra, activation] = fusedOps(node);
    return extra === 'biasadd' ? { bias: constantOf(view, node.inputNames[2]) as tf.Tensor, activation } : null;
  }
  if (['BiasAdd', 'Add', 'AddV2', 'Sub'].includes(node.op) && node.inputs.length === 2 && isConst(0) !== isConst(1)) {
    const k = isConst(0) ? 0 : 1;
    const c = constantOf(view, node.inputNames[k]) as tf.Tensor;
    return { bias: node.op === 'Sub' && k === 1 ? tf.neg(c) : c, activation: 'linear' };
  }
  if (node.op.startsWith('FusedBatchNorm')) {
    const [scale, offset, mean, variance] = [1, 2, 3, 4].map((k) => constantOf(view, node.inputNames[k]) as tf.Tensor);
    const eps = (node.attrParams.epsilon?.value as number | undefined) ?? 1e-3;
    return { bias: tf.sub(offset, tf.div(tf.mul(mean, scale), tf.sqrt(tf.add(variance, eps)))), activation: 'linear' };
  }
  return null;
}

const isRelu = (node: GraphNode) => node.op === 'Relu' || (LINEAR_OPS.includes(node.op) && isFused(node) && fusedOps(node)[1] === 'relu');

/** The run; refuses (typed, naming `method`) a graph it cannot run node by node, or whose biases it cannot read. */
export function graphHookedRun(view: GraphView, method: string, forBiases: boolean): HookedRun {
  const nodes = view.order.map((n) => view.nodes[n]).filter((n) => n.op !== 'Const' && n.name !== view.inputNode);
  const refuse = (why: string) => notSupported(method, 'graph-model', why);
  for (const node of nodes) {
    const second = node.inputNames.find((t, k) => node.inputs[k].op !== 'Const' && outputIndexOf(t) !== 0);
    if (second) throw refuse(`node '${node.name}' reads output ${outputIndexOf(second)} of '${nodeOfTensor(second)}'`);
    if (!forBiases) continue;
    if (LINEAR_OPS.includes(node.op) && isFused(node) && !BIASED_ACTIVATIONS.includes(fusedOps(node)[1]))
      throw refuse(`node '${node.name}' fuses the activation ${fusedOps(node)[1]} after its bias`);
    if (node.op.startsWith('FusedBatchNorm') && [1, 2, 3, 4].some((k) => node.inputs[k]?.op !== 'Const'))
      throw refuse(`batch norm '${node.name}' has parameters that are not constants`);
  }
  return (input: tf.Tensor4D, hooks: RunHooks): tf.Tensor => {
    const values = new Map<string, tf.Tensor>([[view.inputNode, input]]);
    for (const node of nodes) {
      const feeds: tf.NamedTensorMap = {};
      node.inputNames.forEach((t, k) => {
        if (node.inputs[k].op !== 'Const') feeds[t] = values.get(nodeOfTensor(t)) as tf.Tensor;
      });
      let y = view.runNode(node.name, feeds);
      if (hooks.biased) {
        const b = biasOf(view, node);
        if (b) y = hooks.biased(node.name, y, b.bias, b.activation);
      }
      if (hooks.reluOutput && isRelu(node)) y = hooks.reluOutput(y);
      values.set(node.name, y);
    }
    return values.get(view.logitsNode) as tf.Tensor;
  };
}
