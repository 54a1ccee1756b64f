import type * as tf from '@tensorflow/tfjs';

/** One node of tfjs-converter's parsed graph: the parts LRP and CAM read. */
export interface GraphNode {
  name: string;
  op: string;
  inputs: GraphNode[];
  /** Input tensor names as the graph writes them ('node' or 'node:1' for a second output). */
  inputNames: string[];
  children: GraphNode[];
  /** Attributes as the converter parsed them (strides, pad, fusedOps, …), keyed by tfjs names. */
  attrParams: Record<string, { value?: unknown } | undefined>;
}

/**
 * A GraphModel's graph as the methods that depend on op types read it (LRP, CAM): node types,
 * inputs and attributes, the constants, and single nodes run on given inputs.
 */
export interface GraphView {
  readonly nodes: Readonly<Record<string, GraphNode>>;
  /** Every node the logits depend on, constants included, inputs before the nodes that read them. */
  readonly order: readonly string[];
  readonly inputNode: string;
  /** The node read as logits (before a final Sigmoid/Softmax). */
  readonly logitsNode: string;
  /** A constant node's value (owned by the model), or null when the node is not a constant. */
  constant(name: string): tf.Tensor | null;
  /** Every non-constant node's value for this input (input excluded), from one execute call; the caller owns them. */
  values(input: tf.Tensor4D): Map<string, tf.Tensor>;
  /** One node run on its own, every non-constant input fed by name (differentiable). */
  runNode(name: string, feeds: tf.NamedTensorMap): tf.Tensor;
}

/** The name of the node behind an input tensor name ('conv:0' → 'conv'). */
export const nodeOfTensor = (tensorName: string): string => tensorName.replace(/:\d+$/, '');

/** The output index an input tensor name refers to ('split:1' → 1). */
export const outputIndexOf = (tensorName: string): number => Number(/:(\d+)$/.exec(tensorName)?.[1] ?? 0);
