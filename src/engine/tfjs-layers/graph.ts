import * as tf from '@tensorflow/tfjs';
import { batchNorm5d } from './batchnorm5d.js';

/**
 * A LayersModel's node graph, run by our own executor (the way tfjs's internal
 * runInternalGraph does: nodes by depth, each called on its inbound tensors with its call
 * arguments). Owning the loop lets us cache every activation and re-run only what is
 * downstream of a layer with that layer's output replaced — exact gradients for graphs with
 * skip connections, which a two-halves split of the model gets wrong.
 */

/* The parts of tfjs-layers' internal Node/Container that the executor reads. */
interface SymbolicTensorRef {
  id: number;
  name: string;
  shape: Array<number | null>;
}
interface LayerRef {
  name: string;
  getClassName(): string;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
  activation?: { getClassName(): string; apply(x: tf.Tensor): tf.Tensor };
}
interface NodeRef {
  outboundLayer: LayerRef;
  inputTensors: SymbolicTensorRef[];
  outputTensors: SymbolicTensorRef[];
  callArgs?: Record<string, unknown>;
}
interface ContainerRef {
  inputs: SymbolicTensorRef[];
  outputs: SymbolicTensorRef[];
  nodesByDepth: Record<string, NodeRef[]>;
}

export interface GraphStep {
  layer: LayerRef;
  inputIds: number[];
  outputIds: number[];
  callArgs: Record<string, unknown>;
  outputShapes: Array<Array<number | null>>;
}

export class LayersGraph {
  readonly steps: GraphStep[];
  readonly inputId: number;
  readonly outputId: number;
  /** Tensor id of each layer's (first) output. */
  readonly layerOutput = new Map<string, number>();

  constructor(model: tf.LayersModel) {
    const container = model as unknown as ContainerRef;
    if (container.inputs.length !== 1 || container.outputs.length !== 1) {
      throw new Error(`expected a model with one input and one output, got ${container.inputs.length} and ${container.outputs.length}`);
    }
    this.inputId = container.inputs[0].id;
    this.outputId = container.outputs[0].id;
    const depths = Object.keys(container.nodesByDepth)
      .map(Number)
      .sort((a, b) => b - a);
    this.steps = [];
    for (const depth of depths) {
      for (const node of container.nodesByDepth[String(depth)]) {
        if (node.outboundLayer.getClassName() === 'InputLayer') continue;
        const step: GraphStep = {
          layer: node.outboundLayer,
          inputIds: node.inputTensors.map((t) => t.id),
          outputIds: node.outputTensors.map((t) => t.id),
          callArgs: { ...(node.callArgs ?? {}) },
          outputShapes: node.outputTensors.map((t) => t.shape),
        };
        this.steps.push(step);
        if (!this.layerOutput.has(step.layer.name)) this.layerOutput.set(step.layer.name, step.outputIds[0]);
      }
    }
  }

  /** Step indices that depend on tensor `id` (directly or through other steps). */
  downstreamOf(id: number): Set<number> {
    const dirty = new Set<number>([id]);
    const steps = new Set<number>();
    this.steps.forEach((step, i) => {
      if (step.inputIds.some((x) => dirty.has(x))) {
        steps.add(i);
        step.outputIds.forEach((o) => dirty.add(o));
      }
    });
    return steps;
  }

  /** Tensors read by the given steps that none of them produces (other than `except`). */
  crossingInto(steps: Set<number>, except: number): number[] {
    const produced = new Set<number>([except]);
    for (const i of steps) this.steps[i].outputIds.forEach((o) => produced.add(o));
    const crossing = new Set<number>();
    for (const i of steps) for (const id of this.steps[i].inputIds) if (!produced.has(id)) crossing.add(id);
    return [...crossing];
  }

  /**
   * Runs the graph. `known` holds tensors by id that are taken as given (the input, cached
   * activations, a replaced layer output); only steps listed in `only` (all when omitted) run.
   * `linearOutput` calls the last layer without its softmax/sigmoid so the result is logits.
   * Returns every tensor computed, by id; the caller owns them.
   */
  run(known: Map<number, tf.Tensor>, only?: Set<number>, linearOutput = true, unfused = false): Map<number, tf.Tensor> {
    const values = new Map(known);
    const computed = new Map<number, tf.Tensor>();
    this.steps.forEach((step, i) => {
      if (only && !only.has(i)) return;
      const inputs = step.inputIds.map((id) => {
        const t = values.get(id);
        if (!t) throw new Error(`internal: layer ${step.layer.name} runs before its input ${id}`);
        return t;
      });
      const producesOutput = step.outputIds.includes(this.outputId);
      const outputs =
        (unfused && unfusedConv(step, inputs, linearOutput && producesOutput)) ||
        batchNorm5d(step.layer, inputs) ||
        callLayer(step, inputs, linearOutput && producesOutput);
      step.outputIds.forEach((id, k) => {
        values.set(id, outputs[k]);
        computed.set(id, outputs[k]);
      });
    });
    return computed;
  }
}

/** Softmax/sigmoid fused into a layer's `activation`, which we skip to read logits. */
export function squashingActivation(layer: LayerRef): 'softmax' | 'sigmoid' | 'none' {
  const name = layer.activation?.getClassName().toLowerCase() ?? '';
  if (name === 'softmax') return 'softmax';
  if (name === 'sigmoid') return 'sigmoid';
  if (layer.getClassName() === 'Activation' || layer.getClassName() === 'Softmax') {
    const cfg = (layer as unknown as { getConfig(): Record<string, unknown> }).getConfig();
    const act = String(cfg.activation ?? (layer.getClassName() === 'Softmax' ? 'softmax' : '')).toLowerCase();
    if (act === 'softmax' || act === 'sigmoid') return act;
  }
  return 'none';
}

function callLayer(step: GraphStep, inputs: tf.Tensor[], logits: boolean): tf.Tensor[] {
  const { layer } = step;
  const arg = inputs.length === 1 ? inputs[0] : inputs;
  const kwargs = { ...step.callArgs };
  delete kwargs.mask;
  if (logits && squashingActivation(layer) !== 'none') {
    if (layer.getClassName() === 'Activation' || layer.getClassName() === 'Softmax') return [inputs[0]];
    // Temporarily swap the fused activation for the identity: the layer's own maths, minus the squash.
    const saved = layer.activation;
    layer.activation = { getClassName: () => 'linear', apply: (x: tf.Tensor) => x };
    try {
      return toList(layer.call(arg, kwargs));
    } finally {
      layer.activation = saved;
    }
  }
  return toList(layer.call(arg, kwargs));
}

function toList(x: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(x) ? x : [x];
}

interface ConvLayerRef extends LayerRef {
  kernel: { read(): tf.Tensor4D };
  bias?: { read(): tf.Tensor1D } | null;
  strides: [number, number];
  padding: 'same' | 'valid';
  dilationRate: [number, number];
  dataFormat: 'channelsLast' | 'channelsFirst';
}

/**
 * A Conv2D as separate conv, bias and activation ops. Inside tf.grad the layer's own fused
 * kernel also computes the filter gradient, which Grad-CAM never needs and which dominates the
 * backward time; the unfused ops compute only the input gradient. Null when not applicable.
 */
function unfusedConv(step: GraphStep, inputs: tf.Tensor[], logits: boolean): tf.Tensor[] | null {
  const layer = step.layer as ConvLayerRef;
  if (layer.getClassName() !== 'Conv2D' || inputs.length !== 1 || layer.dataFormat !== 'channelsLast') return null;
  return tf.tidy(() => {
    let y: tf.Tensor = tf.conv2d(inputs[0] as tf.Tensor4D, layer.kernel.read(), layer.strides, layer.padding, 'NHWC', layer.dilationRate);
    if (layer.bias) y = tf.add(y, layer.bias.read());
    const act = layer.activation;
    if (act && !(logits && squashingActivation(layer) !== 'none')) y = act.apply(y);
    return [y];
  });
}
