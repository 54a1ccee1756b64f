import { SegGradCamError } from '../../errors.js';
import { nodeOfTensor, outputIndexOf, type GraphNode, type GraphView } from './view.js';

/**
 * Which LRP rule each node of a GraphModel gets, decided from op types alone (before any
 * tensor work), and which of its inputs receive relevance. Only nodes that relevance reaches
 * from the logits need a rule: the gate branch of a gated product (squeeze-and-excitation,
 * hard-swish) receives none, so ops found only there never matter.
 */
export type NodeRule =
  /** Conv2D, depthwise, transposed conv, MatMul (fused or not): ε- or αβ-rule; `biasNode` is a bias Add folded into it. */
  | { kind: 'linear'; biasNode: string | null }
  /** An Add of a constant right after a linear node (its only reader): relevance passes to that node, which owns the bias. */
  | { kind: 'folded-bias' }
  /** Element-wise activations and Identity: relevance passes to the first input unchanged. */
  | { kind: 'pass' }
  /** x ⊙ g where g is a gate (a bounded activation): all relevance goes to x. */
  | { kind: 'gate' }
  /** An element-wise affine map of one tensor with constants (x + b, x·c, x/c, batch norm): ε-rule. */
  | { kind: 'affine' }
  /** A sum of tensors (Add, AddV2, AddN): ε- or αβ-rule over the addends. */
  | { kind: 'sum' }
  /** Selections and rearrangements (max-pooling, reshape, padding, slicing, concatenation): relevance routed by the op's VJP. */
  | { kind: 'route' }
  /** Averages and interpolations (average pooling, Mean, Sum, bilinear/nearest resize): z-rule with non-negative coefficients. */
  | { kind: 'proportional' };

export interface GraphLrpPlan {
  /** Every node relevance reaches, with its rule and the inputs (tensor names) that get relevance, in reverse execution order. */
  steps: Array<{ node: GraphNode; rule: NodeRule; targets: string[] }>;
}

export const LINEAR_OPS = [
  'Conv2D',
  '_FusedConv2D',
  'DepthwiseConv2dNative',
  'DepthwiseConv2d',
  'FusedDepthwiseConv2dNative',
  'Conv2DBackpropInput',
  'MatMul',
  '_FusedMatMul',
];
const PASS_OPS = ['Relu', 'Relu6', 'Elu', 'Selu', 'LeakyRelu', 'Prelu', 'Sigmoid', 'Tanh', 'Identity', 'Snapshot'];
const ROUTE_OPS = [
  'MaxPool',
  'Reshape',
  'Squeeze',
  'ExpandDims',
  'Pad',
  'PadV2',
  'MirrorPad',
  'StridedSlice',
  'Slice',
  'Transpose',
  'ConcatV2',
  'Concat',
  'Pack',
  'DepthToSpace',
  'SpaceToDepth',
];
const PROPORTIONAL_OPS = ['AvgPool', 'Mean', 'Sum', 'ResizeBilinear', 'ResizeNearestNeighbor'];
const ADD_OPS = ['Add', 'AddV2', 'BiasAdd', 'AddN'];
const AFFINE_OPS = ['Sub', 'Mul', 'RealDiv', 'Div', 'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3'];
/** Activations a fused linear op may end with (relevance passes through them). */
export const FUSED_ACTIVATIONS = ['', 'relu', 'relu6', 'elu', 'leakyrelu', 'prelu', 'sigmoid', 'tanh'];
/** Ops whose output is bounded: as one factor of a product of two tensors, they gate the other. */
const GATE_OPS = ['Sigmoid', 'Relu6', 'ClipByValue', 'HardSigmoid'];

/** Ops graph LRP propagates through. */
export const LRP_GRAPH_OPS: readonly string[] = [...LINEAR_OPS, ...ADD_OPS, ...AFFINE_OPS, ...PASS_OPS, ...ROUTE_OPS, ...PROPORTIONAL_OPS];

/** LRP met a graph node it has no rule for; names the node and its op. */
export class UnsupportedOpError extends SegGradCamError {
  constructor(
    readonly nodeName: string,
    readonly op: string,
    detail = '',
  ) {
    super(`LRP has no rule for node '${nodeName}' (op ${op}${detail}); supported ops: ${LRP_GRAPH_OPS.join(', ')}`, 'model');
    this.name = 'UnsupportedOpError';
  }
}

const isConstant = (n: GraphNode): boolean => n.op === 'Const';

/** _FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul: a linear op with a fused bias and/or activation. */
export const isFused = (node: GraphNode): boolean => node.op.startsWith('_Fused') || node.op.startsWith('Fused');
/** _FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul: a linear op with a fused bias and/or activation. */

/** The fused ops of a _Fused* node, lower case: [extra op ('biasadd', …), activation or '']. */
export function fusedOps(node: GraphNode): [string, string] {
  const ops = ((node.attrParams.fusedOps?.value as string[] | undefined) ?? []).map((s) => s.toLowerCase());
  return [ops[0] ?? '', ops[1] ?? ''];
}

/** True when the node's output is a gate: a bounded activation, possibly shifted or scaled by constants (Relu6(x + 3) / 6). */
function isGate(node: GraphNode): boolean {
  if (GATE_OPS.includes(node.op)) return true;
  if (['Mul', 'RealDiv', 'Div', 'Add', 'AddV2', 'Sub'].includes(node.op) && node.inputs.length === 2) {
    const variable = node.inputs.filter((i) => !isConstant(i));
    return variable.length === 1 && isGate(variable[0]);
  }
  return false;
}

/** A linear node whose bias is not yet part of it (fused ops with BiasAdd already have one). */
function takesBias(node: GraphNode): boolean {
  if (!LINEAR_OPS.includes(node.op)) return false;
  if (!isFused(node)) return true;
  const [extra, activation] = fusedOps(node);
  return extra !== 'biasadd' && activation === '';
}

/** Plans LRP over a graph: the rule of every node relevance reaches; throws UnsupportedOpError for the first without one. */
export function planGraphLrp(view: GraphView): GraphLrpPlan {
  const inCone = new Set(view.order);
  const readers = (n: GraphNode) => n.children.filter((c) => inCone.has(c.name));
  const reached = new Set<string>([view.logitsNode]);
  const foldedBias = new Map<string, string>();
  const steps: GraphLrpPlan['steps'] = [];

  for (let i = view.order.length - 1; i >= 0; i--) {
    const node = view.nodes[view.order[i]];
    if (!reached.has(node.name) || isConstant(node) || node.name === view.inputNode) continue;
    const variable = node.inputNames.filter((_, k) => !isConstant(node.inputs[k]));
    const second = variable.find((t) => outputIndexOf(t) !== 0);
    if (second) throw new UnsupportedOpError(node.name, node.op, `, reads output ${outputIndexOf(second)} of '${nodeOfTensor(second)}'`);
    const { rule, targets } = ruleOf(node, variable, foldedBias.get(node.name) ?? null, readers);
    if (rule.kind === 'folded-bias') foldedBias.set(nodeOfTensor(targets[0]), node.name);
    steps.push({ node, rule, targets });
    for (const t of targets) reached.add(nodeOfTensor(t));
  }
  return { steps };
}

function ruleOf(
  node: GraphNode,
  variable: string[],
  biasNode: string | null,
  readers: (n: GraphNode) => GraphNode[],
): { rule: NodeRule; targets: string[] } {
  const { op } = node;
  const unsupported = (detail = '') => new UnsupportedOpError(node.name, op, detail);
  const first = variable.slice(0, 1);
  if (variable.length === 0) throw unsupported(', no non-constant input');

  if (LINEAR_OPS.includes(op)) return { rule: { kind: 'linear', biasNode }, targets: [linearInput(node, unsupported)] };
  if (PASS_OPS.includes(op)) return { rule: { kind: 'pass' }, targets: first };
  if (ROUTE_OPS.includes(op)) return { rule: { kind: 'route' }, targets: variable };
  if (PROPORTIONAL_OPS.includes(op)) {
    if (variable.length !== 1) throw unsupported(', several non-constant inputs');
    return { rule: { kind: 'proportional' }, targets: variable };
  }
  if (ADD_OPS.includes(op)) {
    if (variable.length > 1) return { rule: { kind: 'sum' }, targets: variable };
    const producer = node.inputs[node.inputNames.indexOf(variable[0])];
    const isBias = node.inputs.length === 2 && takesBias(producer) && readers(producer).length === 1;
    return { rule: { kind: isBias ? 'folded-bias' : 'affine' }, targets: variable };
  }
  if (op === 'Mul' && variable.length === 2) {
    const gates = node.inputs.map(isGate);
    if (gates[0] === gates[1])
      throw unsupported(
        gates[0] ? ', a product of two gates' : ', a product of two tensors neither of which is a gate (bounded activation)',
      );
    return { rule: { kind: 'gate' }, targets: [node.inputNames[gates[0] ? 1 : 0]] };
  }
  if (AFFINE_OPS.includes(op)) {
    // Affine in one tensor, the others constants; x / c and batch norm only in their first input.
    const firstOnly = op === 'RealDiv' || op === 'Div' || op.startsWith('FusedBatchNorm');
    if (variable.length !== 1 || (firstOnly && node.inputNames[0] !== variable[0])) throw unsupported(', not an affine map of one tensor');
    return { rule: { kind: 'affine' }, targets: variable };
  }
  throw unsupported();
}

/** The input a linear node is linear in, after checking its weights are constants and its fused ops have rules. */
function linearInput(node: GraphNode, unsupported: (detail?: string) => Error): string {
  const [dataIndex, weightIndex] = node.op === 'Conv2DBackpropInput' ? [2, 1] : [0, 1];
  if (isConstant(node.inputs[dataIndex]) || !isConstant(node.inputs[weightIndex])) throw unsupported(', weights that are not constants');
  const variable = node.inputs.filter((n) => !isConstant(n));
  if (variable.length !== 1) throw unsupported(', several non-constant inputs');
  if (isFused(node)) {
    const [extra, activation] = fusedOps(node);
    if (extra !== 'biasadd' && extra !== '') throw unsupported(`, fused ${extra}`);
    if (!FUSED_ACTIVATIONS.includes(activation)) throw unsupported(`, fused activation ${activation}`);
  }
  if (String(node.attrParams.dataFormat?.value ?? 'nhwc').toLowerCase() !== 'nhwc') throw unsupported(', NCHW');
  if (node.attrParams.transposeA?.value === true) throw unsupported(', transposed input');
  return node.inputNames[dataIndex];
}
