import { biasDecomposition, guidedInputGradient } from '../tfjs/hooks.js';
import { graphHookedRun } from './hooked.js';
import type { BiasGradients } from '../contract.js';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import {
  INPUT_LAYER,
  type BatchGradient,
  type ForwardPass,
  type LayerInfo,
  type ModelAdapter,
  type Objective,
  type OutputInfo,
  type RelevanceOptions,
} from '../contract.js';
import { unknownLayer } from '../errors.js';
import { batchInputGradients, batchScores, objectiveScore } from '../tfjs/objective.js';
import { graphHeadKernel } from './cam.js';
import { lrpGraphRelevance } from './lrp.js';
import { graphReplacedScores } from './replaced-scores.js';
import { tfjsHessianProduct } from '../tfjs/hessian.js';
import type { GraphNode, GraphView } from './view.js';
import { readOutputInfo } from '../tfjs/output-info.js';

/* The part of tfjs-converter's internal graph that the adapter reads. */
interface GraphRef {
  nodes: Record<string, GraphNode>;
}

const NOT_LAYERS = new Set(['Const', 'Placeholder']);

/**
 * Explains a tfjs GraphModel (a converted TensorFlow graph). Every non-constant node is a
 * layer. A gradient at node L feeds L with the variable and every node that crosses the cut
 * (not downstream of L, but read by a node that is) with its cached value, so `execute` runs
 * only the downstream part.
 */
export class GraphModelAdapter implements ModelAdapter {
  readonly kind = 'graph-model';
  readonly runtime = `tfjs-${tf.getBackend()}`;
  readonly input: { height: number; width: number; channels: number };
  readonly output: OutputInfo;
  /** The node read as logits: the model output, or the input of a final Sigmoid/Softmax. */
  readonly logitsNode: string;
  /** A converted graph whose signature fixes the batch (MediaPipe: 1) refuses any other batch. */
  readonly maxBatch: number;
  /** The graph as the LRP and CAM capabilities read it (op types, attributes, constants, single-node runs). */
  readonly graph: GraphView;
  private readonly inputNode: string;
  private readonly nodes: Record<string, GraphNode>;
  private readonly order: string[];
  private layerList: LayerInfo[];
  /** Every non-constant node that the logits depend on. */
  private readonly computed: string[];

  constructor(
    readonly model: tf.GraphModel,
    options: { outputNode?: string } = {},
  ) {
    if (model.inputs.length !== 1) {
      const names = model.inputs.map((i) => i.name.replace(/:0$/, '')).join(', ');
      throw new SegGradCamError(`unsupported model: expected one input, got ${model.inputs.length} (${names})`, 'model');
    }
    const graph = (model as unknown as { executor: { graph: GraphRef } }).executor.graph;
    this.nodes = graph.nodes;
    this.inputNode = model.inputs[0].name.replace(/:0$/, '');
    const shape = model.inputs[0].shape ?? [];
    if (shape.length !== 4 || shape.slice(1).some((d) => d == null || d < 1)) {
      throw new SegGradCamError(
        `unsupported model input shape [${shape.join(', ')}]: expected [batch, height, width, channels] with a fixed size`,
        'model',
      );
    }
    this.input = { height: shape[1], width: shape[2], channels: shape[3] };
    this.maxBatch = shape[0] != null && shape[0] > 0 ? shape[0] : Infinity;

    const requested = options.outputNode ?? model.outputs[0].name.replace(/:0$/, '');
    const outNode = this.nodes[requested];
    if (!outNode) throw new SegGradCamError(`unknown output node '${requested}'`, 'model');
    let activation: OutputInfo['activation'] = 'none';
    let logitsNode = requested;
    // A converted SavedModel names its outputs Identity, Identity_1…: the final Sigmoid/Softmax
    // sits behind them (e.g. BlazePose's segmentation output), and is still the model's activation.
    let last = outNode;
    while (last.op === 'Identity' && last.inputs.length === 1) last = last.inputs[0];
    if (last.op === 'Sigmoid' || last.op === 'Softmax') {
      activation = last.op === 'Sigmoid' ? 'sigmoid' : 'softmax';
      logitsNode = last.inputs[0].name;
    }
    this.logitsNode = logitsNode;
    this.order = topologicalOrder(this.nodes, logitsNode);

    // One probe run gives every node's shape (converted graphs often carry none).
    const names = this.order.filter((n) => !NOT_LAYERS.has(this.nodes[n].op));
    this.computed = names;
    const probe = tf.tidy(() => {
      const x = tf.zeros([1, this.input.height, this.input.width, this.input.channels]);
      const outs = model.execute({ [this.inputNode]: x }, names) as tf.Tensor[];
      return outs.map((t) => t.shape);
    });
    const shapes = new Map(names.map((n, i) => [n, probe[i]]));
    this.output = readOutputInfo(shapes.get(logitsNode) ?? [], activation);
    this.layerList = names
      .filter((n) => shapes.get(n)?.length === 4)
      .map((n) => ({ name: n, type: this.nodes[n].op, outputShape: shapes.get(n) as number[] }));
    this.graph = this.graphView();
  }

  private graphView(): GraphView {
    const { model, nodes, order, inputNode, logitsNode, computed } = this;
    return {
      nodes,
      order,
      inputNode,
      logitsNode,
      constant: (name) => (nodes[name]?.op === 'Const' ? (model.weights[name]?.[0] ?? null) : null),
      values: (input) => {
        const outs = model.execute({ [inputNode]: input }, computed) as tf.Tensor[];
        return new Map(computed.map((n, i) => [n, outs[i]]));
      },
      runNode: (name, feeds) => model.execute(feeds, name) as tf.Tensor,
    };
  }

  layers(): LayerInfo[] {
    return this.layerList.map((l) => ({ ...l, outputShape: [...l.outputShape] }));
  }

  async forward(input: tf.Tensor4D): Promise<ForwardPass> {
    const fetch = this.computed;
    const outs = this.model.execute({ [this.inputNode]: input }, fetch) as tf.Tensor[];
    const cache = new Map<string, tf.Tensor>(fetch.map((n, i) => [n, outs[i]]));
    cache.set(this.inputNode, input.clone());
    const output = cache.get(this.logitsNode) as tf.Tensor;
    let disposed = false;

    // INPUT_LAYER is the input placeholder; every other name must be a listed node.
    const nodeOf = (layer: string): string => {
      if (layer === INPUT_LAYER) return this.inputNode;
      if (!this.layerList.some((l) => l.name === layer)) throw unknownLayer(layer, this.layerList);
      return layer;
    };
    return {
      output,
      activation: (layer) => cache.get(nodeOf(layer)) as tf.Tensor,
      gradient: async (name, objective) => {
        if (disposed) throw new Error('this forward pass has been disposed');
        const layer = nodeOf(name);
        const feedsFor = this.cut(layer);
        const activations = cache.get(layer) as tf.Tensor;
        const f = (a: tf.Tensor): tf.Scalar => {
          const feeds: tf.NamedTensorMap = { [layer]: a };
          for (const n of feedsFor) feeds[n] = cache.get(n) as tf.Tensor;
          const logits = layer === this.logitsNode ? a : (this.model.execute(feeds, this.logitsNode) as tf.Tensor);
          return objectiveScore(logits, objective, this.output);
        };
        const { value, grad } = tf.tidy(() => tf.valueAndGrad(f)(activations));
        const s = value.dataSync()[0];
        value.dispose();
        return { activations: activations.clone() as tf.Tensor4D, gradients: grad as tf.Tensor4D, score: s };
      },
      scoresWithActivations: (name, activations, objective) => {
        if (disposed) throw new Error('this forward pass has been disposed');
        const layer = nodeOf(name);
        const feeds = this.cut(layer);
        return graphReplacedScores(this.model, cache, layer, feeds, this.logitsNode, activations, objective, this.output, this.maxBatch);
      },
      hessianActivationProduct: async (name, objective) => {
        if (disposed) throw new Error('this forward pass has been disposed');
        const layer = nodeOf(name);
        const feedsFor = this.cut(layer);
        const f = (a: tf.Tensor): tf.Scalar => {
          const feeds: tf.NamedTensorMap = { [layer]: a };
          for (const n of feedsFor) feeds[n] = cache.get(n) as tf.Tensor;
          const logits = layer === this.logitsNode ? a : (this.model.execute(feeds, this.logitsNode) as tf.Tensor);
          return objectiveScore(logits, objective, this.output);
        };
        return tfjsHessianProduct(f, cache.get(layer) as tf.Tensor, 'GraphModel');
      },
      dispose: () => {
        if (disposed) return;
        disposed = true;
        for (const t of cache.values()) t.dispose();
        cache.clear();
      },
    };
  }

  scores(inputs: tf.Tensor4D, objective: Objective): Promise<Float32Array> {
    return batchScores(inputs, objective, this.output, this.maxBatch, (x) => this.logitsOf(x));
  }

  inputGradients(inputs: tf.Tensor4D, objective: Objective): Promise<BatchGradient> {
    return batchInputGradients(inputs, objective, this.output, this.maxBatch, (x) => this.logitsOf(x));
  }

  private logitsOf(x: tf.Tensor4D): tf.Tensor {
    return this.model.execute({ [this.inputNode]: x }, this.logitsNode) as tf.Tensor;
  }

  /** Nodes outside the downstream part of `layer` whose values the downstream part reads. */
  private cut(layer: string): string[] {
    const downstream = new Set<string>([layer]);
    for (const n of this.order) {
      if (this.nodes[n].inputs.some((i) => downstream.has(i.name))) downstream.add(n);
    }
    const feeds = new Set<string>();
    for (const n of downstream) {
      if (n === layer) continue;
      for (const i of this.nodes[n].inputs) {
        if (!downstream.has(i.name) && this.nodes[i.name].op !== 'Const') feeds.add(i.name);
      }
    }
    return [...feeds];
  }

  headKernel(layer: LayerInfo): tf.Tensor2D {
    return graphHeadKernel(this.graph, layer);
  }

  relevance(input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D {
    return lrpGraphRelevance(this.graph, input, objective, options);
  }

  /** Guided backpropagation: the graph run node by node with guided ReLUs (./hooked.ts). */
  guidedGradient(input: tf.Tensor4D, objective: Objective): tf.Tensor4D {
    return guidedInputGradient(graphHookedRun(this.graph, 'guided backpropagation', false), input, objective, this.output);
  }

  /** FullGrad's input and bias gradients (./hooked.ts). */
  biasGradients(input: tf.Tensor4D, objective: Objective): BiasGradients {
    return biasDecomposition(graphHookedRun(this.graph, 'FullGrad', true), input, objective, this.output);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Nodes needed for `target`, inputs before the nodes that read them. */
function topologicalOrder(nodes: Record<string, GraphNode>, target: string): string[] {
  const order: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: Array<[string, number]> = [[target, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const node = nodes[top[0]];
    if (top[1] === 0) {
      if (state.get(top[0]) === 2) {
        stack.pop();
        continue;
      }
      state.set(top[0], 1);
    }
    if (top[1] < node.inputs.length) {
      const next = node.inputs[top[1]++].name;
      if (!state.has(next)) stack.push([next, 0]);
    } else {
      state.set(top[0], 2);
      order.push(top[0]);
      stack.pop();
    }
  }
  return order;
}
