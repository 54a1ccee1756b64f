import * as tf from '@tensorflow/tfjs';
import type { ForwardPass, LayerInfo, ModelAdapter, Objective } from '../engine/contract.js';

/**
 * A CAM method turns a layer's activations A [1,h,w,K] and gradients ∂S/∂A into a map
 * [h, w]. Most methods only say how to weight the channels (`channelWeights`); the base
 * then computes ReLU(Σ_k α_k A^k), as pytorch-grad-cam does.
 */
export interface CamMethod {
  readonly name: string;
  /** Needs ∂S/∂A (false for gradient-free methods such as Eigen-CAM: they get zeros). */
  readonly usesGradients: boolean;
  /** Returns the map [h, w] (after ReLU) and the channel weights α [K] where they exist. */
  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D | null };
}

/** What a method that needs more than one layer's A and ∂S/∂A (extra passes, the model itself) is given. */
export interface MethodContext {
  readonly adapter: ModelAdapter;
  /** The forward pass of the (possibly augmented) image. */
  readonly pass: ForwardPass;
  /** The model input [1, H, W, C] of that pass; owned by the pass. */
  readonly input: tf.Tensor4D;
  /** The layer asked for (ignored by methods that attribute to the input). */
  readonly layer: LayerInfo;
  readonly objective: Objective;
  /** The range the model's input values live in (pixels 0..255 map to it): baselines and noise scale with it. */
  readonly inputRange: [number, number];
}

export interface MethodResult {
  /** The map (after ReLU), at the layer's resolution, or the input's for input attributions. */
  cam: tf.Tensor2D;
  weights: tf.Tensor1D | null;
  /** S at the unperturbed input. */
  score: number;
}

/** A method that runs the model itself (Score-CAM, SmoothGrad, Integrated Gradients, Grid Saliency, LRP, CAM). */
export interface ModelMethod {
  readonly name: string;
  /** 'input': the map is over the model input, whatever layer was asked; 'layer': over the asked layer. */
  readonly target: 'input' | 'layer';
  explain(context: MethodContext): Promise<MethodResult>;
}

export type Method = CamMethod | ModelMethod;

export const isModelMethod = (m: Method): m is ModelMethod => typeof (m as Partial<ModelMethod>).explain === 'function';

/**
 * ReLU(Σ_c x_c) of a [1, h, w, C] tensor, as [h, w]: the map of every method (channels weighted first, or attributions per
 * input channel). `negative`: ReLU(−Σ_c x_c), the part that speaks against the class.
 */
export function reluChannelSum(x: tf.Tensor4D, negative = false): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const sum = tf.sum(x, -1);
    return tf.relu(negative ? tf.neg(sum) : sum).reshape([h, w]) as tf.Tensor2D;
  });
}

/** ReLU(Σ_k α_k A^k) for channel weights α [K] (or per-element weights of A's shape), as [h, w]; `negative`: ReLU(−Σ_k α_k A^k). */
export function weightedCam(activations: tf.Tensor4D, weights: tf.Tensor, negative = false): tf.Tensor2D {
  return tf.tidy(() => reluChannelSum(tf.mul(activations, weights), negative));
}

/** The option of every method that can show what speaks against the class: ReLU(−Σ …) instead of ReLU(Σ …). */
export interface NegativeOption {
  /** The negative map (default false): ReLU(−Σ_k α_k A^k), the evidence against class c in M. */
  negative?: boolean;
}

export abstract class ChannelWeightedCam implements CamMethod {
  abstract readonly name: string;
  readonly usesGradients = true;
  readonly negative: boolean;
  abstract channelWeights(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor1D;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    return tf.tidy(() => {
      const weights = this.channelWeights(activations, gradients);
      return { cam: weightedCam(activations, weights, this.negative), weights };
    });
  }
}

/** Methods that weight every activation A^k_uv on its own: ReLU(Σ_k W^k_uv ⊙ A^k_uv); no channel weights. */
export abstract class ElementWeightedCam implements CamMethod {
  abstract readonly name: string;
  readonly usesGradients = true;
  readonly negative: boolean;
  abstract elementWeights(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D;

  constructor(options: NegativeOption = {}) {
    this.negative = options.negative ?? false;
  }

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: null } {
    const cam = tf.tidy(() => weightedCam(activations, this.elementWeights(activations, gradients), this.negative));
    return { cam, weights: null };
  }
}
