import * as tf from '@tensorflow/tfjs';
import type { Tensor as OrtTensor } from 'onnxruntime-common';
import { SegGradCamError } from '../../errors.js';
import type { ForwardPass, LayerGradient, Objective } from '../contract.js';
import type { OnnxModelAdapter } from './adapter.js';
import { logitsCotangent, scoreOf } from './cotangent.js';
import { nchwToNhwc } from './layout.js';

/** One image's forward pass: logits and cached tensors (NCHW, as ONNX Runtime returned them). */
export class OnnxForwardPass implements ForwardPass {
  readonly output: tf.Tensor;
  private readonly logits: Float32Array;
  private shipped?: tf.Tensor;
  private readonly views = new Map<string, tf.Tensor>();
  private disposed = false;

  /**
   * @param complete whether the cache holds everything a full forward pass caches; a lean pass
   *   (one layer's needs) fills the rest with one more forward run when another layer's
   *   activation is wanted (cacheActivations) or several layers are differentiated at once.
   */
  constructor(
    readonly adapter: OnnxModelAdapter,
    private readonly cache: Map<string, OrtTensor>,
    private complete = true,
  ) {
    const raw = cache.get(adapter.logitsName)?.data as Float32Array;
    this.logits = adapter.logitsNhwc(raw);
    const o = adapter.output;
    this.output =
      o.kind === 'map' ? tf.tensor4d(this.logits, [1, o.height, o.width, o.channels]) : tf.tensor2d(this.logits, [1, o.channels]);
  }

  get predictionOutput(): tf.Tensor | undefined {
    return this.shipped;
  }

  /** @internal The logits of the file as shipped (NCHW), when the explained graph differs from it numerically. */
  setPredictionLogits(nchw: Float32Array): void {
    const o = this.adapter.output;
    const v = this.adapter.logitsNhwc(nchw);
    this.shipped?.dispose();
    this.shipped = o.kind === 'map' ? tf.tensor4d(v, [1, o.height, o.width, o.channels]) : tf.tensor2d(v, [1, o.channels]);
  }

  /** The logits in the project's layout ([H, W, C] flattened). */
  get logitsData(): Float32Array {
    return this.logits;
  }

  activation(layer: string): tf.Tensor {
    this.check();
    const t = this.adapter.resolve(layer);
    let v = this.views.get(t);
    if (!v) {
      const c = this.cache.get(t);
      if (!c)
        throw new SegGradCamError(
          `the activation of '${layer}' is not cached by this pass (see the cacheLayers option): call cacheActivations first, or its gradient computes it`,
          'layer',
        );
      v = toNhwcTensor(c.data as Float32Array, c.dims);
      this.views.set(t, v);
    }
    return v;
  }

  /** Makes sure the layers' activations are cached (one more forward run on a lean pass). */
  async cacheActivations(layers: string[]): Promise<void> {
    this.check();
    if (this.complete || layers.every((l) => this.cache.has(this.adapter.resolve(l)))) return;
    await this.adapter.fillCache(this.cache);
    this.complete = true;
  }

  /** S for an objective at this pass's logits. */
  score(objective: Objective): number {
    return scoreOf(this.logits, objective, this.adapter.output);
  }

  private primed: { layer: string; objective: Objective; gradient: Float32Array } | null = null;

  /** @internal The gradient a primed forward run computed, handed out by the first matching `gradient` call. */
  prime(layer: string, objective: Objective, gradient: Float32Array): void {
    this.primed = { layer, objective, gradient };
  }

  async gradient(layer: string, objective: Objective): Promise<LayerGradient> {
    const p = this.primed;
    if (p && p.layer === layer && p.objective === objective) {
      this.primed = null;
      return this.layerGradient(this.adapter.resolve(layer), p.gradient, this.score(objective));
    }
    return (await this.gradientBatch(layer, [objective]))[0];
  }

  /**
   * A and ∂S_k/∂A for K objectives in one backward run (the cotangents stacked on the batch
   * axis). Graphs whose ops mix the batch axis fall back to one run per objective.
   */
  async gradientBatch(layer: string, objectives: Objective[]): Promise<LayerGradient[]> {
    this.check();
    if (objectives.length === 0) return [];
    const t = this.adapter.resolve(layer);
    const scored = objectives.map((o) => logitsCotangent(this.logits, o, this.adapter.output));
    const scores = scored.map((s) => s.score);
    const grads = await this.adapter.runGradient(
      t,
      this.cache,
      scored.map((s) => s.cotangent),
    );
    const a = this.cache.get(t) as OrtTensor;
    const dims = [...a.dims];
    const size = dims.reduce((x, y) => x * y, 1);
    const activations = toNhwcTensor(a.data as Float32Array, dims) as tf.Tensor4D;
    return scores.map((score, i) => ({
      activations: i === 0 ? activations : activations.clone(),
      gradients: toNhwcTensor(grads.subarray(i * size, (i + 1) * size), dims) as tf.Tensor4D,
      score,
    }));
  }

  /**
   * A and ∂S/∂A at several layers in one backward run, from the layer every other one is
   * downstream of (or from the input); one run per layer when there is no such run or the pass
   * did not cache what it reads.
   */
  async gradientLayers(layers: string[], objective: Objective): Promise<LayerGradient[]> {
    this.check();
    const tensors = layers.map((l) => this.adapter.resolve(l));
    const unique = [...new Set(tensors)];
    if (unique.length > 1) await this.cacheActivations(unique);
    const root = unique.length > 1 && unique.every((t) => this.cache.has(t)) ? this.adapter.rootOf(unique) : null;
    const { cotangent, score } = logitsCotangent(this.logits, objective, this.adapter.output);
    const also = unique.filter((t) => t !== root);
    const grads = root ? await this.adapter.runGradientLayers(root, also, this.cache, cotangent) : null;
    if (!root || !grads) {
      const out: LayerGradient[] = [];
      for (const layer of layers) out.push(await this.gradient(layer, objective));
      return out;
    }
    const byTensor = new Map<string, Float32Array>([[root, grads[0]], ...also.map((t, i): [string, Float32Array] => [t, grads[i + 1]])]);
    return tensors.map((t) => this.layerGradient(t, byTensor.get(t) as Float32Array, score));
  }

  /** A and ∂S/∂A as NHWC tensors for a cached tensor and its gradient (NCHW data). */
  private layerGradient(t: string, gradient: Float32Array, score: number): LayerGradient {
    const a = this.cache.get(t) as OrtTensor;
    return {
      activations: toNhwcTensor(a.data as Float32Array, a.dims) as tf.Tensor4D,
      gradients: toNhwcTensor(gradient, a.dims) as tf.Tensor4D,
      score,
    };
  }

  /** S for B replacements of a layer's output, the rest of the model run from this pass's input (AblationCAM). */
  async scoresWithActivations(layer: string, activations: tf.Tensor4D, objective: Objective): Promise<Float32Array> {
    this.check();
    return this.adapter.replacedScores(layer, this.cache.get(this.adapter.inputName) as OrtTensor, activations, objective);
  }

  private check() {
    if (this.disposed) throw new Error('this forward pass has been disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.output.dispose();
    this.shipped?.dispose();
    for (const v of this.views.values()) v.dispose();
    this.views.clear();
    this.cache.clear();
  }
}

function toNhwcTensor(data: Float32Array, dims: readonly number[]): tf.Tensor {
  if (dims.length !== 4) return tf.tensor(Float32Array.from(data), [...dims]);
  const [n, c, h, w] = dims;
  return tf.tensor4d(nchwToNhwc(data, n, c, h, w), [n, h, w, c]);
}
