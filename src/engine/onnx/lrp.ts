/**
 * LRP on an ONNX model (the adapter's `relevance` capability): the graph is run in TF.js on NCHW tensors (./lrp-ops.ts,
 * initializers read from the model — no ONNX Runtime call, so it is synchronous), then relevance walks from the logits
 * back to the input in reverse node order, each node by the rule its op gets, the same rules as the GraphModel
 * engine (../tfjs/lrp-rules.ts): ε or αβ for Conv/ConvTranspose/Gemm/MatMul (a bias Add right after a bias-free
 * Conv/MatMul folded in), ε for element-wise affine maps and BatchNormalization, ε/αβ over the addends of an Add,
 * the z-rule for average pooling, means and resizes, the op's VJP for max-pooling (winner takes all), reshapes,
 * transposes and concatenation (split), and activations pass relevance unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import type { Objective, RelevanceOptions } from '../contract.js';
import { alphaBetaRule, epsilonRule, firstLayerRule, noFirstLayer, proportionalRule, sumRule } from '../tfjs/lrp-rules.js';
import type { GraphAnalysis } from './analysis.js';
import { onnxLinearOp, ruleKind, runOnnxNode, type OnnxRuleKind } from './lrp-ops.js';
import type { NodeProto } from './proto.js';

interface Step {
  node: NodeProto;
  kind: OnnxRuleKind;
  /** Data inputs that receive relevance. */
  targets: string[];
  /** The Add node whose constant is this linear node's bias. */
  biasNode: NodeProto | null;
}

/** Every node relevance reaches, with its rule, in reverse node order; throws UnsupportedOnnxOpError before any tensor work. */
export function planOnnxLrp(an: GraphAnalysis, logits: string): Step[] {
  const cone = an.ancestors(logits);
  const reached = new Set<string>([logits]);
  const folded = new Map<string, NodeProto>();
  const steps: Step[] = [];
  const nodes = an.nodes.filter((n) => n.output.some((o) => cone.has(o)));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const out = node.output[0];
    if (!reached.has(out) || !an.dataDependent.has(out)) continue;
    const variable = node.input.filter((t) => t && an.dataDependent.has(t));
    const kind = ruleKind(an, node, variable);
    const targets = kind === 'linear' || kind === 'pass' ? [node.input[0]] : variable;
    if (kind === 'folded-bias') folded.set(variable[0], node);
    steps.push({ node, kind, targets, biasNode: kind === 'linear' ? (folded.get(out) ?? null) : null });
    for (const t of targets) reached.add(t);
  }
  return steps;
}

/** The relevance of every input value, [1, H, W, C] (NHWC), for S = Σ weights · logits. */
export function onnxRelevance(
  an: GraphAnalysis,
  logits: string,
  input: tf.Tensor4D,
  objective: Objective,
  options: RelevanceOptions,
): tf.Tensor4D {
  const steps = planOnnxLrp(an, logits);
  // The first-layer rule (z⁺, zᴮ) applies to the linear nodes that read the model input.
  if (firstLayerRule(options)) {
    const readers = steps.filter((s) => s.targets.includes(an.inputName));
    if (!readers.some((s) => s.kind === 'linear'))
      throw noFirstLayer(options.firstLayer, readers[0]?.node.name || readers[0]?.node.opType || 'no node');
  }
  return tf.tidy(() => {
    const values = forwardValues(an, logits, tf.transpose(input, [0, 3, 1, 2]));
    const y = values.get(logits) as tf.Tensor;
    const w =
      y.rank === 4
        ? tf.tensor(objective.weights, [1, y.shape[2] as number, y.shape[3] as number, y.shape[1] as number]).transpose([0, 3, 1, 2])
        : tf.tensor(objective.weights, y.shape);
    const relevance = new Map<string, tf.Tensor>([[logits, tf.mul(y, w)]]);
    const valueOf = (t: string) => values.get(t) ?? null;
    for (const step of steps) {
      const r = relevance.get(step.node.output[0]);
      if (!r) continue;
      const outs = tf.tidy(() => propagate(an, step, r, valueOf, options));
      step.targets.forEach((t, k) => {
        const prev = relevance.get(t);
        relevance.set(t, prev ? tf.add(prev, outs[k]) : outs[k]);
      });
      relevance.delete(step.node.output[0]);
    }
    const r = relevance.get(an.inputName) ?? tf.zeros(values.get(an.inputName)?.shape ?? input.shape);
    return tf.transpose(r, [0, 2, 3, 1]) as tf.Tensor4D;
  });
}

/** Every data tensor the logits depend on, computed in TF.js from the NCHW input. */
function forwardValues(an: GraphAnalysis, logits: string, x: tf.Tensor): Map<string, tf.Tensor> {
  const values = new Map<string, tf.Tensor>([[an.inputName, x]]);
  const cone = an.ancestors(logits);
  for (const node of an.nodes) {
    const out = node.output[0];
    if (!cone.has(out) || !an.dataDependent.has(out)) continue;
    if (['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(node.opType)) {
      const op = onnxLinearOp(an, node, null);
      values.set(out, op.apply(values.get(node.input[0]) as tf.Tensor, op.kernel, op.bias));
    } else {
      values.set(
        out,
        runOnnxNode(
          an,
          node,
          node.input.map((t) => values.get(t) ?? null),
        ),
      );
    }
  }
  return values;
}

/** The relevance of each of a step's targets, given the relevance `r` of its output. */
function propagate(
  an: GraphAnalysis,
  step: Step,
  r: tf.Tensor,
  valueOf: (t: string) => tf.Tensor | null,
  options: RelevanceOptions,
): tf.Tensor[] {
  const { node, kind, targets } = step;
  const { epsilon } = options;
  const usesEpsilon = options.rule === 'epsilon';
  const runWith = (xs: tf.Tensor[]) =>
    runOnnxNode(
      an,
      node,
      node.input.map((t) => {
        const k = targets.indexOf(t);
        return k >= 0 ? xs[k] : valueOf(t);
      }),
    );
  const x0 = valueOf(targets[0]) as tf.Tensor;
  switch (kind) {
    case 'pass':
    case 'folded-bias':
      return [sumToShape(r, x0.shape)];
    case 'linear': {
      const bias = step.biasNode ? biasOf(an, step.biasNode) : null;
      const op = onnxLinearOp(an, node, bias);
      const first = targets[0] === an.inputName ? firstLayerRule(options) : null;
      if (first) return [first(op, x0, r)];
      return [usesEpsilon ? epsilonRule(op, x0, r, epsilon) : alphaBetaRule(op, x0, r, options.alpha, options.beta)];
    }
    case 'affine':
      return [proportionalRule((v) => runWith([v]), x0, r, epsilon)];
    case 'proportional':
      return [proportionalRule((v) => runWith([v]), x0, r, usesEpsilon ? epsilon : 0)];
    case 'route': {
      const xs = targets.map((t) => valueOf(t) as tf.Tensor);
      return tf.grads((...vs: tf.Tensor[]) => tf.sum(tf.mul(runWith(vs), r)))(xs);
    }
    case 'sum': {
      const addends = node.input.map((t) => tf.broadcastTo(valueOf(t) ?? constantOf(an, t), r.shape));
      const shares = sumRule(
        addends,
        r,
        usesEpsilon ? { kind: 'epsilon', epsilon } : { kind: 'alpha-beta', alpha: options.alpha, beta: options.beta },
      );
      return targets.map((t) => sumToShape(shares[node.input.indexOf(t)], (valueOf(t) as tf.Tensor).shape));
    }
  }
}

function constantOf(an: GraphAnalysis, name: string): tf.Tensor {
  const c = an.constant(name);
  return c ? tf.tensor(Float32Array.from(c.data, Number), c.dims) : tf.scalar(0);
}

/** The constant addend of a bias Add, shaped to broadcast over NCHW (a Conv's) or [N, C] (a MatMul's). */
function biasOf(an: GraphAnalysis, add: NodeProto): tf.Tensor {
  const name = add.input.find((t) => !an.dataDependent.has(t)) as string;
  return constantOf(an, name);
}

/** Relevance over a broadcast result summed back to the shape of the input that was broadcast. */
function sumToShape(r: tf.Tensor, shape: number[]): tf.Tensor {
  if (r.shape.length === shape.length && r.shape.every((d, i) => d === shape[i])) return r;
  const lead = r.rank - shape.length;
  const axes = r.shape.map((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? i : -1)).filter((i) => i >= 0);
  return tf.sum(r, axes).reshape(shape);
}
