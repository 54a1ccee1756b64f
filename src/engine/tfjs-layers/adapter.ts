import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import {
  INPUT_LAYER,
  boxArea,
  unionBox,
  type BatchGradient,
  type ForwardPass,
  type GridBox,
  type GradientPrime,
  type LayerGradient,
  type LayerInfo,
  type ModelAdapter,
  type Objective,
  type OutputInfo,
  type RelevanceOptions,
  type BiasGradients,
} from '../contract.js';
import { unknownLayer } from '../errors.js';
import { layersHeadKernel } from './cam.js';
import { layersRelevance } from './lrp.js';
import { layersHookedRun } from './hooked.js';
import { biasDecomposition, guidedInputGradient } from '../tfjs/hooks.js';
import { LayersGraph, squashingActivation } from './graph.js';
import { LayersBackward } from './backward.js';
import { replacedScores } from './replaced-scores.js';
import { tfjsHessianProduct } from '../tfjs/hessian.js';
import { batchInputGradients, batchScores, objectiveCotangent, objectiveScore, stackObjectives } from '../tfjs/objective.js';
import { readOutputInfo } from '../tfjs/output-info.js';
import { groupByWindow } from '../windows.js';

/** Explains a tfjs LayersModel, including functional graphs with skip connections (U-Nets). */
export class LayersModelAdapter implements ModelAdapter {
  readonly kind = 'layers-model';
  readonly runtime = `tfjs-${tf.getBackend()}`;
  readonly input: { height: number; width: number; channels: number };
  readonly output: OutputInfo;
  readonly maxBatch = Infinity;
  /** The model's node graph as our executor runs it (read by the LRP and CAM capabilities, which need layer types and weights). */
  readonly graph: LayersGraph;
  /** VJPs on the cached pass; layers it has no rule for fall back to tf.grad over a re-run. */
  private readonly backward: LayersBackward;
  private readonly layerList: LayerInfo[];

  /**
   * `differentiate: 'tape'` always uses tf.grad over a re-run of the part after the layer (the
   * reference the VJPs are tested against); the default uses the VJPs where every layer after
   * the explained one has a rule. `windowMaxArea`: the VJPs run on windows around a region (same
   * numbers, see layers-backward.ts) when its box covers at most this fraction of the output map
   * (default 0.25; 0 turns windows off).
   */
  constructor(
    readonly model: tf.LayersModel,
    private readonly options: { differentiate?: 'vjp' | 'tape'; windowMaxArea?: number } = {},
  ) {
    try {
      this.graph = new LayersGraph(model);
    } catch (err) {
      throw new SegGradCamError(`unsupported model: ${(err as Error).message}`, 'model');
    }
    const shape = model.inputs[0].shape;
    if (shape.length !== 4 || shape[1] == null || shape[2] == null || shape[3] == null) {
      throw new SegGradCamError(
        `unsupported model input shape [${shape.join(', ')}]: expected [batch, height, width, channels] with a fixed size`,
        'model',
      );
    }
    this.input = { height: shape[1], width: shape[2], channels: shape[3] };
    this.backward = new LayersBackward(this.graph);
    const last = this.graph.steps.find((s) => s.outputIds.includes(this.graph.outputId));
    const activation = last ? squashingActivation(last.layer) : 'none';
    this.output = readOutputInfo(model.outputs[0].shape, activation);
    this.layerList = [];
    for (const step of this.graph.steps) {
      const s = step.outputShapes[0];
      if (s.length !== 4 || s.slice(1).some((d) => d == null)) continue;
      this.layerList.push({ name: step.layer.name, type: step.layer.getClassName(), outputShape: [1, ...(s.slice(1) as number[])] });
    }
  }

  layers(): LayerInfo[] {
    return this.layerList.map((l) => ({ ...l, outputShape: [...l.outputShape] }));
  }

  async forward(input: tf.Tensor4D, prime?: GradientPrime): Promise<ForwardPass> {
    const { graph } = this;
    const tensorOf = (layer: string): number => this.tensorOf(layer);
    const cache = new Map<number, tf.Tensor>();
    cache.set(graph.inputId, tf.keep(input.clone()));
    // The logits with tensor `id` replaced by `a`: only the steps downstream of it re-run; every
    // other tensor they read (the skips) is taken from `known` as a constant.
    const logitsWith = (
      known: Map<number, tf.Tensor>,
      id: number,
      a: tf.Tensor,
      downstream: Set<number>,
      keep?: Map<number, tf.Tensor>,
    ): tf.Tensor => {
      const inputs = new Map(known);
      inputs.set(id, a);
      const computed = graph.run(inputs, downstream, true, true);
      if (keep) for (const [k, t] of computed) keep.set(k, tf.keep(t));
      return (computed.get(graph.outputId) ?? inputs.get(graph.outputId)) as tf.Tensor;
    };
    let primed: { layer: string; objective: Objective; result: LayerGradient } | null = null;
    try {
      // With VJPs for the part after the layer, the backward needs no re-run: no priming.
      if (prime?.objectiveOf && !this.usesVjp(tensorOf(prime.layer)))
        primed = this.primedForward(cache, tensorOf(prime.layer), prime, logitsWith);
      else {
        tf.tidy(() => {
          for (const [id, t] of graph.run(new Map([[graph.inputId, input]]))) cache.set(id, tf.keep(t));
        });
      }
    } catch (err) {
      for (const t of new Set(cache.values())) t.dispose();
      throw err;
    }
    const output = cache.get(graph.outputId);
    if (!output) throw new Error('internal: the model output was not computed');

    let disposed = false;
    const checkLive = () => {
      if (disposed) throw new Error('this forward pass has been disposed');
    };
    const scoreOf = (objective: Objective): number => tf.tidy(() => objectiveScore(output, objective, this.output).dataSync()[0]);
    // Gradients at several tensors from one VJP backward pass (every id must use the VJPs).
    const vjpGradients = (ids: number[], objective: Objective): LayerGradient[] => {
      const grads = tf.tidy(() =>
        this.backward.gradients(cache, ids, objectiveCotangent(output, objective, this.output), this.windowOf(objective)),
      );
      const score = scoreOf(objective);
      return ids.map((id, k) => ({
        activations: (cache.get(id) as tf.Tensor).clone() as tf.Tensor4D,
        gradients: grads[k] as tf.Tensor4D,
        score,
      }));
    };
    const pass: ForwardPass = {
      output,
      activation: (layer) => cache.get(tensorOf(layer)) as tf.Tensor,
      gradient: async (layer, objective) => {
        checkLive();
        if (primed && primed.layer === layer && primed.objective === objective) {
          const { result } = primed;
          primed = null;
          return result;
        }
        const id = tensorOf(layer);
        if (this.usesVjp(id)) return vjpGradients([id], objective)[0];
        const activations = cache.get(id) as tf.Tensor;
        const downstream = graph.downstreamOf(id);
        const f = (a: tf.Tensor): tf.Scalar => objectiveScore(logitsWith(cache, id, a, downstream), objective, this.output);
        const { value, grad } = tf.tidy(() => tf.valueAndGrad(f)(activations));
        const s = value.dataSync()[0];
        value.dispose();
        return { activations: activations.clone() as tf.Tensor4D, gradients: grad as tf.Tensor4D, score: s };
      },
      gradientLayers: async (layers, objective) => {
        checkLive();
        const ids = layers.map(tensorOf);
        if (!ids.every((id) => this.usesVjp(id))) {
          const out: LayerGradient[] = [];
          for (const layer of layers) out.push(await pass.gradient(layer, objective));
          return out;
        }
        return vjpGradients(ids, objective);
      },
      gradientBatch: async (layer, objectives) => {
        checkLive();
        if (objectives.length === 0) return [];
        const id = tensorOf(layer);
        const downstream = graph.downstreamOf(id);
        const K = objectives.length;
        const activations = cache.get(id) as tf.Tensor;
        const grads = tf.tidy(() => {
          if (this.usesVjp(id)) {
            // Cotangents stacked on the batch axis (the cached activations broadcast against them),
            // in groups whose windows nearly coincide: distant regions run on their own windows.
            const out: tf.Tensor[] = new Array(K);
            const groups =
              this.backward.windowReason([id]) == null
                ? groupByWindow(
                    objectives.map((o) => this.windowOf(o)),
                    boxArea,
                    unionBox,
                  )
                : [{ members: objectives.map((_, k) => k), window: undefined }];
            for (const { members, window: box } of groups) {
              const seed = tf.concat(
                members.map((k) => objectiveCotangent(output, objectives[k], this.output)),
                0,
              );
              const parts = tf.split(this.backward.gradients(cache, [id], seed, box)[0], members.length, 0);
              members.forEach((k, j) => (out[k] = parts[j]));
            }
            return out;
          }
          // Tensors the downstream part reads from outside it (the skips), tiled to the batch.
          const known = new Map<number, tf.Tensor>();
          for (const other of graph.crossingInto(downstream, id)) known.set(other, tileBatch(cache.get(other) as tf.Tensor, K));
          const stacked = stackObjectives(objectives, this.output);
          const f = (a: tf.Tensor): tf.Scalar => stacked(logitsWith(known, id, a, downstream));
          return tf.split(tf.grad(f)(tileBatch(activations, K)), K, 0);
        });
        return objectives.map((o, k) => ({
          activations: activations.clone() as tf.Tensor4D,
          gradients: grads[k] as tf.Tensor4D,
          score: scoreOf(o),
        }));
      },
      scoresWithActivations: (layer, activations, objective) => {
        checkLive();
        return replacedScores(graph, cache, tensorOf(layer), activations, objective, this.output);
      },
      hessianActivationProduct: async (layer, objective) => {
        checkLive();
        const id = tensorOf(layer);
        const downstream = graph.downstreamOf(id);
        const f = (a: tf.Tensor): tf.Scalar => objectiveScore(logitsWith(cache, id, a, downstream), objective, this.output);
        return tfjsHessianProduct(f, cache.get(id) as tf.Tensor, 'LayersModel');
      },
      dispose: () => {
        if (disposed) return;
        disposed = true;
        if (primed) tf.dispose([primed.result.activations, primed.result.gradients]);
        for (const t of new Set(cache.values())) t.dispose();
        cache.clear();
      },
    };
    return pass;
  }

  /** How gradients at a layer are computed: 'vjp' on the cached pass, or 'tape' (tf.grad over a re-run; a layer after it has no rule). */
  gradientMode(layer: string): 'vjp' | 'tape' {
    return this.usesVjp(this.tensorOf(layer)) ? 'vjp' : 'tape';
  }

  /** The graph tensor of a layer's output (INPUT_LAYER: the model input); unknown names are a layer error. */
  private tensorOf(layer: string): number {
    if (layer === INPUT_LAYER) return this.graph.inputId;
    const id = this.graph.layerOutput.get(layer);
    if (id == null) throw unknownLayer(layer, this.layerList);
    return id;
  }

  /** Why gradients at a layer do not run on windows around a region (null: they do, for regions small enough). */
  windowReason(layer: string): string | null {
    return this.backward.windowReason([this.tensorOf(layer)]);
  }

  /** The box a backward pass for this objective may run on (its support, when small enough), or undefined: the whole map. */
  private windowOf(objective: Objective): GridBox | undefined {
    const s = objective.support;
    const max = this.options.windowMaxArea ?? 0.25;
    if (!s || this.output.kind !== 'map' || max <= 0) return undefined;
    return boxArea(s) <= max * this.output.height * this.output.width ? s : undefined;
  }

  /** Whether gradients at tensor `id` come from the VJPs on the cached pass (no re-run). */
  private usesVjp(id: number): boolean {
    return this.options.differentiate !== 'tape' && this.backward.unsupported(id) == null;
  }

  /**
   * The forward pass with `prime`'s gradient taken on the way: everything not downstream of the
   * layer runs plainly, the rest once inside tf.valueAndGrad (its activations are kept for the
   * cache), so the downstream part is not run a second time for the first explanation.
   */
  private primedForward(
    cache: Map<number, tf.Tensor>,
    id: number,
    prime: GradientPrime,
    logitsWith: (
      known: Map<number, tf.Tensor>,
      id: number,
      a: tf.Tensor,
      downstream: Set<number>,
      keep?: Map<number, tf.Tensor>,
    ) => tf.Tensor,
  ): { layer: string; objective: Objective; result: LayerGradient } {
    const { graph } = this;
    const downstream = graph.downstreamOf(id);
    const upstream = new Set([...graph.steps.keys()].filter((i) => !downstream.has(i)));
    tf.tidy(() => {
      for (const [k, t] of graph.run(new Map([[graph.inputId, cache.get(graph.inputId) as tf.Tensor]]), upstream)) cache.set(k, tf.keep(t));
    });
    const activations = cache.get(id) as tf.Tensor;
    let objective: Objective | null = null;
    let failure: unknown = null;
    const f = (a: tf.Tensor): tf.Scalar => {
      const logits = logitsWith(cache, id, a, downstream, cache);
      try {
        objective = (prime.objectiveOf as NonNullable<GradientPrime['objectiveOf']>)(logits);
      } catch (err) {
        // Throwing here would leave the tensors the tape saved for the backward pass alive:
        // finish with a zero score instead and rethrow afterwards.
        failure = err;
        return tf.mul(tf.sum(logits), 0) as tf.Scalar;
      }
      return objectiveScore(logits, objective, this.output);
    };
    const { value, grad } = tf.tidy(() => tf.valueAndGrad(f)(activations));
    if (failure) {
      tf.dispose([value, grad]);
      throw failure;
    }
    const score = value.dataSync()[0];
    value.dispose();
    const result = { activations: activations.clone() as tf.Tensor4D, gradients: grad as tf.Tensor4D, score };
    return { layer: prime.layer, objective: objective as unknown as Objective, result };
  }

  scores(inputs: tf.Tensor4D, objective: Objective): Promise<Float32Array> {
    return batchScores(inputs, objective, this.output, this.maxBatch, (x) => this.logitsOf(x));
  }

  inputGradients(inputs: tf.Tensor4D, objective: Objective): Promise<BatchGradient> {
    return batchInputGradients(inputs, objective, this.output, this.maxBatch, (x) => this.logitsOf(x, true));
  }

  /** `unfused` under tf.grad: convs as plain ops, so no filter gradient is computed. */
  private logitsOf(x: tf.Tensor4D, unfused = false): tf.Tensor {
    const computed = this.graph.run(new Map([[this.graph.inputId, x]]), undefined, true, unfused);
    return computed.get(this.graph.outputId) as tf.Tensor;
  }

  /** Raw model output through our executor (for checks against model.predict). */
  runGraph(input: tf.Tensor4D, logits: boolean): tf.Tensor {
    return tf.tidy(() => {
      const computed = this.graph.run(new Map([[this.graph.inputId, input]]), undefined, logits);
      return computed.get(this.graph.outputId) as tf.Tensor;
    });
  }

  headKernel(layer: LayerInfo): tf.Tensor2D {
    return layersHeadKernel(this.graph, layer);
  }

  relevance(input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D {
    return layersRelevance(this.graph, input, objective, options);
  }

  /** Guided backpropagation: the executor with guided ReLUs (./hooked.ts). */
  guidedGradient(input: tf.Tensor4D, objective: Objective): tf.Tensor4D {
    return guidedInputGradient(layersHookedRun(this.graph, false), input, objective, this.output);
  }

  /** FullGrad's input and bias gradients (./hooked.ts). */
  biasGradients(input: tf.Tensor4D, objective: Objective): BiasGradients {
    return biasDecomposition(layersHookedRun(this.graph, true), input, objective, this.output);
  }

  parameterCount(): number {
    return this.model.countParams();
  }

  layersModel(): tf.LayersModel {
    return this.model;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** x repeated K times along the batch axis. */
function tileBatch(x: tf.Tensor, k: number): tf.Tensor {
  return k === 1 ? x.clone() : tf.tile(x, [k, ...x.shape.slice(1).map(() => 1)]);
}
