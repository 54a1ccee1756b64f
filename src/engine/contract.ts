import type { LayerLink } from './bottleneck.js';
import type * as tf from '@tensorflow/tfjs';

/**
 * The name under which `ForwardPass.activation`/`gradient` (and `Explainer` requests) reach
 * the model input itself: gradients w.r.t. the input image for attribution methods.
 */
export const INPUT_LAYER = 'input';

/** One layer (LayersModel) or graph node (GraphModel) whose output can be explained. */
export interface LayerInfo {
  name: string;
  /** Layer class (Conv2D, MaxPooling2D, …) or graph op (Relu, Conv2D, …). */
  type: string;
  /** Output shape including the batch dimension, e.g. [1, 16, 16, 64]. */
  outputShape: number[];
}

/** How the model's raw output is read as per-pixel (or per-image) class scores. */
export interface OutputInfo {
  /** [1, H, W, C] maps or [1, C] vectors (a classifier, explained as a 1x1 map). */
  kind: 'map' | 'vector';
  height: number;
  width: number;
  /** Channels of the raw output. A single sigmoid channel is a binary model. */
  channels: number;
  /**
   * The activation that the model applies after its logits. When the model ends with a
   * softmax or sigmoid, adapters return the values *before* it, so scores are logits.
   */
  activation: 'softmax' | 'sigmoid' | 'none';
}

/**
 * What to differentiate: S = Σ weights · y + offset, where y are the logits (`on: 'logits'`) or
 * the model's probabilities (`on: 'probability'`: softmax over channels, or a sigmoid for a
 * single channel). `weights` has the logits' layout ([H, W, C] or [C]) — it is the cotangent
 * (region mask × class one-hot), so a new region or class needs no new graph.
 */
export interface Objective {
  weights: Float32Array;
  on: 'logits' | 'probability';
  offset: number;
  /**
   * For a map output, a box of the output grid, [[y0, y1), [x0, x1)], outside which every weight
   * is zero (regionObjective sets it). Engines may then skip the rest of the map: scoring, and
   * the ONNX adapter's cotangents and backward windows, look only inside it.
   */
  support?: GridBox;
}

/** Rows [y0, y1) and columns [x0, x1) of a map. */
export type GridBox = [[number, number], [number, number]];

/** The box holding both. */
export const unionBox = (a: GridBox, b: GridBox): GridBox => [
  [Math.min(a[0][0], b[0][0]), Math.max(a[0][1], b[0][1])],
  [Math.min(a[1][0], b[1][0]), Math.max(a[1][1], b[1][1])],
];

export const boxArea = (b: GridBox) => (b[0][1] - b[0][0]) * (b[1][1] - b[1][0]);

/** A and ∂S/∂A at one layer; both tensors belong to the caller. */
export interface LayerGradient {
  activations: tf.Tensor4D;
  gradients: tf.Tensor4D;
  score: number;
}

/** A, ∂S/∂A and H·A at one layer (ForwardPass.hessianActivationProduct); every tensor belongs to the caller. */
export interface HessianProduct extends LayerGradient {
  hessianProduct: tf.Tensor4D;
}

/** S per image of a batch and ∂S_b/∂x_b; the tensor belongs to the caller. */
export interface BatchGradient {
  gradients: tf.Tensor4D;
  scores: Float32Array;
}

/** Everything one forward pass over one image produced, kept so a new target costs only a backward pass. */
export interface ForwardPass {
  /** Logits, [1, H, W, C] or [1, C]. Owned by the pass: do not dispose. */
  readonly output: tf.Tensor;
  /**
   * Optional: the logits of the model file as shipped, when the graph the engine differentiates
   * differs from it numerically (ONNX: float16 weights widened, quantised ops read straight-through).
   * Predictions (labels, class regions) are taken from these, so they equal the runtime's own run.
   * Owned by the pass: do not dispose.
   */
  readonly predictionOutput?: tf.Tensor;
  /** The cached output of a layer (or the input, for INPUT_LAYER). Owned by the pass: do not dispose. */
  activation(layer: string): tf.Tensor;
  /**
   * Makes sure `activation` can answer for these layers. Optional: a pass that caches lazily
   * (ONNX: a pass primed for one layer's gradient keeps only that layer's needs) runs the model
   * again here; callers reading activations without a gradient call it first.
   */
  cacheActivations?(layers: string[]): Promise<void>;
  /**
   * A = the layer's output and ∂S/∂A for the objective S, every activation that does not
   * depend on the layer held at its cached value. INPUT_LAYER gives ∂S/∂x at the input.
   */
  gradient(layer: string, objective: Objective): Promise<LayerGradient>;
  /**
   * The same for K objectives (regions or classes) in one batched backward pass: the layer's
   * activations and the tensors crossing the cut are tiled K times and the K cotangents stacked.
   * Optional: callers fall back to K single calls.
   */
  gradientBatch?(layer: string, objectives: Objective[]): Promise<LayerGradient[]>;
  /**
   * A and ∂S/∂A at several layers for one objective, in one backward pass where the adapter can
   * (every layer's gradient is on the way to the earliest one). Optional: callers fall back to
   * one `gradient` call per layer.
   */
  gradientLayers?(layers: string[], objective: Objective): Promise<LayerGradient[]>;
  /**
   * S for each of B replacements of one layer's output: `activations` [B, h, w, K] (the caller's) stand in for
   * the layer's cached output, and only the part of the model after the layer runs, every other tensor it reads
   * (skips) at its cached value. Optional: methods that edit activations (AblationCAM) need it and refuse an
   * engine without it.
   */
  scoresWithActivations?(layer: string, activations: tf.Tensor4D, objective: Objective): Promise<Float32Array>;
  /**
   * ShapleyCAM: A, ∂S/∂A and H·A, the Hessian of S w.r.t. the layer's output applied to A itself (∇_A (∂S/∂A · A)
   * with the second A held constant), exact (nested differentiation). Optional: engines without second derivatives
   * (ONNX: the compiled gradient graph is first-order) do not offer it and shapley-cam refuses with a typed error.
   */
  hessianActivationProduct?(layer: string, objective: Objective): Promise<HessianProduct>;
  dispose(): void;
}

/**
 * Asks `forward` for one gradient computed during the forward pass itself: the part of the model
 * downstream of `layer` then runs once, under the gradient tape, instead of once to predict and
 * again to differentiate. `objectiveOf` receives the logits (valid only during the call) and
 * returns the objective; the pass's first `gradient(layer, objective)` call with that very
 * objective object gets the result. Without `objectiveOf` (several objectives to come, as in
 * explainMany) it only says which layer's gradients the pass is for: an engine may then cache
 * just what they need (ONNX: the lean pass). Adapters may ignore it (gradients are then computed
 * on demand, and anything not cached is filled on first use).
 */
export interface GradientPrime {
  layer: string;
  objectiveOf?(logits: tf.Tensor): Objective;
  /**
   * The objective itself, when it does not depend on the prediction (a fixed region and class):
   * an engine can then run the forward and backward parts together (ONNX: one run).
   */
  objective?: Objective;
  /**
   * What the objective takes from the prediction, when an engine may find it inside its run (the
   * forward and backward parts then take one run). `objectiveOf` still gives the objective, and
   * the engine must check that its own choice equals it. On logits:
   *  - `classRegion`: S over the pixels predicted as this class;
   *  - `region`: S over this region M of the output grid (nonzero = in M), for the class
   *    predicted most often in M (the smallest on ties; one pixel: its class).
   */
  seed?: { classRegion: number } | { region: Uint8Array };
}

/** The LRP rule for linear layers and its constants (see src/methods/lrp.ts). */
export interface RelevanceOptions {
  rule: 'epsilon' | 'alpha-beta';
  /** ε of the ε-rule, in the units of the layers' pre-activations. */
  epsilon: number;
  /** αβ-rule weights (α − β = 1 conserves relevance). */
  alpha: number;
  beta: number;
  /** The rule of the linear layers that read the model input: 'same' (default: `rule`), 'z-plus' or 'z-box' (needs low, high). */
  firstLayer?: 'same' | 'z-plus' | 'z-box';
  /** zᴮ bounds: the lowest and highest value a model input can take (after preprocessing). */
  low?: number;
  high?: number;
}

/**
 * One interface over TF.js LayersModels and GraphModels and ONNX models. The members after
 * `dispose` are optional capabilities: a method asks for the one it needs and reports "not
 * supported by this model" when the engine does not offer it (see ./errors.ts). Nothing outside
 * an engine's folder checks an adapter's class.
 */
export interface ModelAdapter {
  readonly kind: string;
  /** What runs the model, as written in results (e.g. 'tfjs-wasm', 'onnxruntime-node (cpu)'). */
  readonly runtime: string;
  /** Input size the model expects; images are resized to it. */
  readonly input: { height: number; width: number; channels: number };
  readonly output: OutputInfo;
  /** Explainable layers in execution order (spatial, 4-D outputs only). */
  layers(): LayerInfo[];
  /** Optional: one sentence per way the graph explained differs from the file (float16 widened, quantised read straight-through), for users to see. */
  readonly notes?: readonly string[];
  /** Optional: how each layer is computed from the nearest other layers (the bottleneck choice reads it: ./bottleneck.ts). */
  layerLinks?(): ReadonlyMap<string, LayerLink[]>;
  /**
   * Optional: the logits predictions are read from ([1, H, W, C] or [1, C], the caller's), from one
   * plain run of the model on a [1, H, W, C] input, nothing cached (ONNX: the file as shipped).
   */
  predictOutput?(input: tf.Tensor4D): Promise<tf.Tensor>;
  /** Runs the model once on a [1, H, W, C] float input and caches every activation (see GradientPrime for `prime`). */
  forward(input: tf.Tensor4D, prime?: GradientPrime): Promise<ForwardPass>;
  /** The largest batch one model call takes (1 when a graph's signature fixes it); the batched calls below split larger batches. */
  readonly maxBatch: number;
  /** S for each image of a batch [B, H, W, C] (no activations are kept). */
  scores(inputs: tf.Tensor4D, objective: Objective): Promise<Float32Array>;
  /** S_b and ∂S_b/∂x_b for each image of a batch [B, H, W, C] (images are independent). */
  inputGradients(inputs: tf.Tensor4D, objective: Objective): Promise<BatchGradient>;
  dispose(): void;

  /**
   * CAM: the [K, C] kernel of the linear head that reads `layer` [1, h, w, K] through a global
   * average pooling only (the head's logits are the model output); the caller owns it. Throws a
   * SegGradCamError naming what is missing when the model has no such head after this layer.
   */
  headKernel?(layer: LayerInfo): tf.Tensor2D;
  /**
   * LRP: the relevance of every input value, [1, H, W, C] (signed), for S = Σ weights · logits,
   * propagated by the engine's per-layer (per-op) rules; the caller owns it. Throws a
   * SegGradCamError naming the first layer or op without a rule.
   */
  relevance?(input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D;
  /**
   * Guided backpropagation (Springenberg et al. 2015): ∂S/∂x [1, H, W, C] with every ReLU's backward passing only
   * positive gradients at positive inputs; the caller owns it. Throws a SegGradCamError naming what it cannot run.
   */
  guidedGradient?(input: tf.Tensor4D, objective: Objective): tf.Tensor4D;
  /**
   * FullGrad's decomposition (Srinivas & Fleuret 2019): ∂S/∂x and, for every layer with a bias that S depends on, the
   * bias-gradient term b ⊙ ∂S/∂z at its output z. Throws a SegGradCamError naming what it cannot run.
   */
  biasGradients?(input: tf.Tensor4D, objective: Objective): BiasGradients;
  /** The number of parameters (weights) of the model. */
  parameterCount?(): number;
  /**
   * The TF.js LayersModel that computes this adapter's outputs, for weight-randomisation sanity
   * checks (src/eval/randomize.ts re-draws its layers' weights in place; the adapter sees them).
   */
  layersModel?(): tf.LayersModel;
}

/**
 * ∂S/∂x and the bias-gradient terms of FullGrad (ModelAdapter.biasGradients); the tensors belong to the caller. For a
 * piecewise-linear network (ReLU, max-pooling, …) on logits, S − offset = Σ x ⊙ ∂S/∂x + Σ over every term's values.
 */
export interface BiasGradients {
  /** S at the input (offset included). */
  score: number;
  /** ∂S/∂x, [1, H, W, C]. */
  inputGradient: tf.Tensor4D;
  /**
   * One per layer with a bias b (convolutions, dense layers, BatchNorm's effective bias β − μγ/√(σ² + ε), a constant
   * added): b ⊙ ∂S/∂z at its output z before any activation, [1, h, w, K] (channels last) or [1, K].
   */
  biasTerms: Array<{ layer: string; term: tf.Tensor }>;
}
