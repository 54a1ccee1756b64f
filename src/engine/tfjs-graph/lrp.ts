import * as tf from '@tensorflow/tfjs';
import type { Objective, RelevanceOptions } from '../contract.js';
import { nodeOfTensor, type GraphNode, type GraphView } from './view.js';
import { graphLinearOp } from './lrp-linear.js';
import { planGraphLrp, type GraphLrpPlan } from './lrp-plan.js';
import { alphaBetaRule, epsilonRule, firstLayerRule, noFirstLayer, proportionalRule, sumRule } from '../tfjs/lrp-rules.js';

/**
 * LRP over a GraphModel's nodes: every node's value from one execute call, then relevance
 * walks from the logits back to the input in reverse execution order, each node by the rule
 * its op gets (lrp-plan.ts). Linear ops use the same ε/αβ rules as the LayersModel
 * version (../tfjs/lrp-rules.ts); parameter-free ops are differentiated by running the node alone on
 * its cached inputs, so their exact semantics (padding, resize mode, axes) are the converter's.
 * Returns the relevance of every input value, [1, H, W, C]; the caller owns it.
 */
export function lrpGraphRelevance(view: GraphView, input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D {
  const plan = planGraphLrp(view); // throws for an op without a rule before any tensor work
  // The first-layer rule (z⁺, zᴮ) applies to the linear nodes that read the model input.
  if (firstLayerRule(options)) {
    const readers = plan.steps.filter((s) => s.targets.some((t) => nodeOfTensor(t) === view.inputNode));
    if (!readers.some((s) => s.rule.kind === 'linear')) throw noFirstLayer(options.firstLayer, readers[0]?.node.name ?? 'no node');
  }
  return tf.tidy(() => {
    const values = view.values(input);
    values.set(view.inputNode, input);
    const valueOf = (tensorName: string): tf.Tensor => {
      const name = nodeOfTensor(tensorName);
      return values.get(name) ?? (view.constant(name) as tf.Tensor);
    };
    const logits = values.get(view.logitsNode) as tf.Tensor;
    const relevance = new Map<string, tf.Tensor>([
      [view.logitsNode, tf.mul(logits, tf.tensor(objective.weights, [1, ...logits.shape.slice(1)]))],
    ]);

    for (const step of plan.steps) {
      const r = relevance.get(step.node.name);
      if (!r) continue;
      const outs = tf.tidy(() => propagate(view, step, r, valueOf, options));
      step.targets.forEach((t, k) => {
        const name = nodeOfTensor(t);
        const prev = relevance.get(name);
        relevance.set(name, prev ? tf.add(prev, outs[k]) : outs[k]);
      });
      // The relevance of a node is spent once passed on: free it (the walk holds one frontier, not every node's).
      relevance.delete(step.node.name);
      if (!outs.includes(r)) r.dispose();
    }
    return (relevance.get(view.inputNode) ?? tf.zerosLike(input)) as tf.Tensor4D;
  });
}

type Step = GraphLrpPlan['steps'][number];

/** The relevance of each of a step's targets, given the relevance `r` of its output. */
function propagate(
  view: GraphView,
  step: Step,
  r: tf.Tensor,
  valueOf: (tensorName: string) => tf.Tensor,
  options: RelevanceOptions,
): tf.Tensor[] {
  const { node, rule, targets } = step;
  const { epsilon } = options;
  const usesEpsilon = options.rule === 'epsilon';
  // The node run alone with `vary` (tensor names) replaced by `xs`, every other input at its cached value.
  const runWith = (vary: string[], xs: tf.Tensor[]): tf.Tensor => {
    const feeds: tf.NamedTensorMap = {};
    node.inputNames.forEach((t, k) => {
      if (node.inputs[k].op !== 'Const') feeds[t] = valueOf(t);
    });
    vary.forEach((t, k) => (feeds[t] = xs[k]));
    return view.runNode(node.name, feeds);
  };
  const only = (f: (x: tf.Tensor) => tf.Tensor[]) => f(valueOf(targets[0]));

  switch (rule.kind) {
    case 'pass':
    case 'folded-bias':
    case 'gate':
      return [sumToShape(r, valueOf(targets[0]).shape)];
    case 'linear': {
      const op = graphLinearOp(view, node, valueOf(node.name), rule.biasNode ? biasOf(view, view.nodes[rule.biasNode]) : null);
      const first = nodeOfTensor(targets[0]) === view.inputNode ? firstLayerRule(options) : null;
      if (first) return only((a) => [first(op, a, r)]);
      return only((a) => [usesEpsilon ? epsilonRule(op, a, r, epsilon) : alphaBetaRule(op, a, r, options.alpha, options.beta)]);
    }
    case 'affine':
      // An affine map with constants: the ε-rule R_x = x ⊙ VJP(R / (z ± ε)), under either rule (as for an unfolded BatchNorm).
      return only((x) => [proportionalRule((v) => runWith(targets, [v]), x, r, epsilon)]);
    case 'proportional':
      return only((x) => [proportionalRule((v) => runWith(targets, [v]), x, r, usesEpsilon ? epsilon : 0)]);
    case 'route': {
      const xs = targets.map(valueOf);
      return tf.grads((...vs: tf.Tensor[]) => tf.sum(tf.mul(runWith(targets, vs), r)))(xs);
    }
    case 'sum': {
      // Every addend (constants too: they take their share of z) broadcast to the output's shape.
      const addends = node.inputNames.map((t) => tf.broadcastTo(valueOf(t), r.shape));
      const shares = sumRule(
        addends,
        r,
        usesEpsilon ? { kind: 'epsilon', epsilon } : { kind: 'alpha-beta', alpha: options.alpha, beta: options.beta },
      );
      return node.inputNames.flatMap((t, k) => (node.inputs[k].op === 'Const' ? [] : [sumToShape(shares[k], valueOf(t).shape)]));
    }
  }
}

/** The constant addend of a bias Add node. */
function biasOf(view: GraphView, add: GraphNode): tf.Tensor {
  const k = add.inputs.findIndex((n) => n.op === 'Const');
  return view.constant(nodeOfTensor(add.inputNames[k])) as tf.Tensor;
}

/** Relevance over a broadcast result summed back to the shape of the input that was broadcast. */
function sumToShape(r: tf.Tensor, shape: number[]): tf.Tensor {
  if (r.shape.length === shape.length && r.shape.every((d, i) => d === shape[i])) return r;
  const lead = r.rank - shape.length;
  const axes = r.shape.map((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? i : -1)).filter((i) => i >= 0);
  return tf.sum(r, axes).reshape(shape);
}
