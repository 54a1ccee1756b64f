/**
 * The ONNX graph run in TF.js on its initializers (as LRP runs it, ./lrp-ops.ts) with the hooks of guided
 * backpropagation and FullGrad (../tfjs/hooks.ts): Relu through `relu`; Conv, ConvTranspose and Gemm with a bias, a
 * BatchNormalization (effective bias B − mean·scale/√(var + ε)) and an Add or Sub of a constant (the constant, or its
 * negation) through `biased`. ONNX Runtime is not called, so both are synchronous; an op outside the LRP op set is a
 * typed refusal before any tensor work.
 */
import * as tf from '@tensorflow/tfjs';
import { notSupported } from '../errors.js';
import type { HookedRun, RunHooks } from '../tfjs/hooks.js';
import type { GraphAnalysis } from './analysis.js';
import { attrFloat, nodeLabel } from './builder.js';
import { LRP_ONNX_OPS, onnxLinearOp, runOnnxNode } from './lrp-ops.js';
import type { NodeProto } from './proto.js';

const LINEAR = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'];

/** The nodes the logits depend on through data, in graph order; refuses (typed, naming `method`) an op without a TF.js rule. */
function dataNodes(an: GraphAnalysis, logits: string, method: string): NodeProto[] {
  const cone = an.ancestors(logits);
  const nodes = an.nodes.filter((n) => cone.has(n.output[0]) && an.dataDependent.has(n.output[0]));
  const missing = nodes.find((n) => !LRP_ONNX_OPS.includes(n.opType));
  if (missing)
    throw notSupported(
      method,
      'onnx',
      `it runs the graph in TF.js, which has no rule for node '${nodeLabel(missing)}' (op ${missing.opType})`,
    );
  return nodes;
}

const constantOf = (an: GraphAnalysis, name: string): tf.Tensor | null => {
  const c = an.constant(name);
  return c ? tf.tensor(Float32Array.from(c.data, Number), c.dims) : null;
};

export function onnxHookedRun(an: GraphAnalysis, logits: string, method: string): HookedRun {
  const nodes = dataNodes(an, logits, method);
  return (input: tf.Tensor4D, hooks: RunHooks): tf.Tensor => {
    const values = new Map<string, tf.Tensor>([[an.inputName, tf.transpose(input, [0, 3, 1, 2])]]);
    for (const node of nodes) {
      const x = values.get(node.input[0]) as tf.Tensor;
      const name = node.output[0];
      let y: tf.Tensor;
      if (LINEAR.includes(node.opType)) {
        const op = onnxLinearOp(an, node, null);
        y = op.apply(x, op.kernel, op.bias);
        if (op.bias && hooks.biased) y = hooks.biased(name, y, op.bias);
      } else if (node.opType === 'Relu' && hooks.relu) {
        y = hooks.relu(x);
      } else {
        y = runOnnxNode(
          an,
          node,
          node.input.map((t) => values.get(t) ?? null),
        );
        const bias = hooks.biased ? biasOf(an, node, values) : null;
        if (bias && hooks.biased) y = hooks.biased(name, y, bias);
      }
      values.set(name, y);
    }
    const y = values.get(logits) as tf.Tensor;
    return y.rank === 4 ? tf.transpose(y, [0, 2, 3, 1]) : y;
  };
}

/** The bias a non-linear-layer node adds: BatchNormalization's effective bias, an Add's constant, a Sub's (signed). */
function biasOf(an: GraphAnalysis, node: NodeProto, values: Map<string, tf.Tensor>): tf.Tensor | null {
  if (node.opType === 'BatchNormalization') {
    const [scale, b, mean, variance] = [1, 2, 3, 4].map((i) => (constantOf(an, node.input[i]) as tf.Tensor).reshape([1, -1, 1, 1]));
    const eps = attrFloat(node, 'epsilon', 1e-5);
    return tf.sub(b, tf.div(tf.mul(mean, scale), tf.sqrt(tf.add(variance, eps))));
  }
  if (node.opType !== 'Add' && node.opType !== 'Sub') return null;
  const data = node.input.map((t) => values.has(t));
  if (data.filter(Boolean).length !== 1) return null;
  const k = data.indexOf(false);
  const c = constantOf(an, node.input[k]);
  if (!c) return null;
  return node.opType === 'Sub' && k === 1 ? tf.neg(c) : c;
}
