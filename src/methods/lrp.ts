import type * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { ModelAdapter, Objective, RelevanceOptions } from '../engine/contract.js';
import { notSupported } from '../engine/errors.js';
import { reluChannelSum, type MethodContext, type MethodResult, type ModelMethod } from './method.js';
import { nonNegative } from './options.js';
import { cachedScore } from './score.js';

export type LrpRule = RelevanceOptions['rule'];

// Each engine's rules live in its folder; these names stay reachable from here.
export { LRP_LAYERS, UnsupportedLayerError } from '../engine/tfjs-layers/lrp.js';
export { LRP_GRAPH_OPS, UnsupportedOpError } from '../engine/tfjs-graph/lrp-plan.js';

export interface LrpOptions {
  /** Default 'epsilon'. */
  rule?: LrpRule;
  /** ε of the ε-rule, in the units of the layers' pre-activations (default 0.01). */
  epsilon?: number;
  /** αβ-rule (α − β = 1 conserves relevance; default α = 2, β = 1). */
  alpha?: number;
  beta?: number;
  /**
   * The rule of the linear layers that read the model input (as Zennit's composites set it): 'same' (default: `rule`),
   * 'z-plus' (z⁺: positive contributions only, bias left out) or 'z-box' (zᴮ: the input bounded by `low`..`high`).
   */
  firstLayerRule?: FirstLayerRule;
  /** zᴮ bounds in the model's input units (default: the input range after preprocessing, MethodContext.inputRange). */
  low?: number;
  high?: number;
}

export type FirstLayerRule = NonNullable<RelevanceOptions['firstLayer']>;
const FIRST_LAYER_RULES: readonly FirstLayerRule[] = ['same', 'z-plus', 'z-box'];

/** The defaults of LrpOptions. */
const DEFAULTS: RelevanceOptions = { rule: 'epsilon', epsilon: 0.01, alpha: 2, beta: 1 };

/**
 * Layer-wise relevance propagation (Montavon et al. 2018) from S back to the input pixels. The
 * output relevance is each logit's share of S: R = (objective weights) ⊙ logits. The map:
 * ReLU(Σ_c R).
 *
 * LayersModels built from common CNN layers (LRP_LAYERS; src/engine/tfjs-layers/lrp.ts): linear layers (Conv2D, Dense,
 * DepthwiseConv2D, Conv2DTranspose) use the ε- or αβ-rule; a BatchNormalization right after
 * one of them (its only reader, no activation in between) is folded into its kernel and bias
 * first; any other BatchNormalization is an affine map and always uses the ε-rule. ReLU-like
 * activations pass relevance through; max-pooling gives it to the winner; average pooling and
 * upsampling share it in proportion; Add splits it by the inputs' shares, Concatenate by channel.
 *
 * GraphModels (LRP_GRAPH_OPS; src/engine/tfjs-graph/lrp.ts): the same rules per node, chosen by op. Conv2D,
 * depthwise and transposed convolutions and MatMul, fused or not, are the linear ops (a fused
 * BiasAdd, or an Add of a constant that is the op's only reader, is its bias; a fused
 * activation passes relevance); element-wise activations pass it; Add/AddN split it by the
 * addends' shares; an element-wise affine map with constants (x·c, x + b not after a linear op,
 * x − c, x / c, batch norm) uses the ε-rule; MaxPool, reshapes, padding, slicing and
 * concatenation route it; AvgPool, Mean, Sum and resizes share it in proportion. A product of
 * two tensors one of which is a gate — a bounded activation (Sigmoid, Relu6, ClipByValue,
 * HardSigmoid), possibly shifted or scaled by constants, as in squeeze-and-excitation and
 * hard-swish x·Relu6(x + 3)/6 — gives all relevance to the other factor (the gate acts as a
 * weight, the usual LRP treatment of gating); a product of two non-gates is an error. Any
 * other op on the relevance path is an UnsupportedOpError naming the node.
 *
 * The engine propagates (its `relevance` capability); an engine without one (ONNX) is a typed
 * "LRP is not supported by this model" error.
 */
export class Lrp implements ModelMethod {
  readonly name = 'lrp';
  readonly target = 'input';
  readonly options: RelevanceOptions;
  /** zᴮ bounds given by the caller (else the context's input range). */
  private readonly bounds: { low?: number; high?: number };

  constructor(options: LrpOptions = {}) {
    const rule = options.rule ?? DEFAULTS.rule;
    if (rule !== 'epsilon' && rule !== 'alpha-beta')
      throw new SegGradCamError(`unknown LRP rule '${String(rule)}'; expected epsilon or alpha-beta`, 'usage');
    this.options = {
      rule,
      epsilon: nonNegative(options.epsilon ?? DEFAULTS.epsilon, 'epsilon'),
      alpha: nonNegative(options.alpha ?? DEFAULTS.alpha, 'alpha'),
      beta: nonNegative(options.beta ?? DEFAULTS.beta, 'beta'),
      firstLayer: options.firstLayerRule ?? 'same',
    };
    if (!FIRST_LAYER_RULES.includes(this.options.firstLayer as FirstLayerRule))
      throw new SegGradCamError(
        `unknown LRP first-layer rule '${String(options.firstLayerRule)}'; expected ${FIRST_LAYER_RULES.join(', ')}`,
        'usage',
      );
    for (const [name, v] of [
      ['low', options.low],
      ['high', options.high],
    ] as const)
      if (v !== undefined && !Number.isFinite(v)) throw new SegGradCamError(`LRP ${name} bound must be a finite number, got ${v}`, 'usage');
    if (options.low !== undefined && options.high !== undefined && !(options.low <= options.high))
      throw new SegGradCamError(`LRP bounds need low ≤ high, got ${options.low} and ${options.high}`, 'usage');
    this.bounds = { low: options.low, high: options.high };
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const [low, high] = [this.bounds.low ?? ctx.inputRange[0], this.bounds.high ?? ctx.inputRange[1]];
    const relevance = lrpRelevance(ctx.adapter, ctx.input, ctx.objective, { ...this.optionsAsGiven(), low, high });
    const cam = reluChannelSum(relevance);
    relevance.dispose();
    return { cam, weights: null, score: cachedScore(ctx) };
  }

  private optionsAsGiven(): LrpOptions {
    const { rule, epsilon, alpha, beta, firstLayer } = this.options;
    return { rule, epsilon, alpha, beta, firstLayerRule: firstLayer };
  }
}

/** The relevance of every input value, [B, H, W, C] (signed); the caller owns it. */
export function lrpRelevance(adapter: ModelAdapter, input: tf.Tensor4D, objective: Objective, options: LrpOptions = {}): tf.Tensor4D {
  if (objective.on !== 'logits') throw new SegGradCamError('LRP explains logits: use score logits', 'usage');
  if (!adapter.relevance) throw notSupported('LRP', adapter.kind, 'its rules are written for TF.js layer and op types');
  return adapter.relevance(input, objective, {
    rule: options.rule ?? DEFAULTS.rule,
    epsilon: options.epsilon ?? DEFAULTS.epsilon,
    alpha: options.alpha ?? DEFAULTS.alpha,
    beta: options.beta ?? DEFAULTS.beta,
    firstLayer: options.firstLayerRule ?? 'same',
    low: options.low,
    high: options.high,
  });
}
