import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from './errors.js';
import type { RgbaImage } from './image.js';
import {
  INPUT_LAYER,
  type ForwardPass,
  type GradientPrime,
  type LayerGradient,
  type LayerInfo,
  type ModelAdapter,
} from './engine/contract.js';
import { findBottleneck } from './engine/bottleneck.js';
import { unknownLayer } from './engine/errors.js';
import { isModelMethod, type CamMethod, type Method } from './methods/index.js';
import { augmentations } from './postprocess/augment.js';
import { normalizeInPlace, type Normalization } from './postprocess/heatmap.js';
import { receptiveField, truncateHeatmap } from './postprocess/truncate.js';
import { predictLabels } from './prediction.js';
import { imageToInput } from './preprocess.js';
import { classCount, type ScoreKind } from './region/objective.js';
import { averagedCams, camMaps, meanOfHeatmaps, takeData, type CamMaps } from './explain/average.js';
import { isPlainGradientCam, methodOf, methodOptionsOf } from './explain/method.js';
import { checkScore, checkedAdapter, checkedPass } from './explain/numeric.js';
import { PassCache, type CachedPass } from './explain/passes.js';
import { predictionSeed, resolveClass, targetBeforePrediction, targetOf, type ClassContext, type Target } from './explain/target.js';
import type { ExplainerOptions, ExplainRequest, Explanation, Prediction } from './explain/types.js';

export type { ExplainerOptions, ExplainRequest, Explanation, Prediction } from './explain/types.js';

/**
 * The pipeline: image → model input → forward once (cached per image) → S = Σ_M y^c →
 * ∂S/∂A at the layer → method → heatmap on the image. Only the backward part re-runs for a new
 * region, class, layer or method of the same image.
 *
 * Concurrent calls are safe: calls for one image share its forward pass (a call arriving while
 * it runs waits for it), and a pass replaced by another image's is freed only when no call still
 * uses it (see ./explain/passes.ts). NaN or ±Inf in the logits, S or a gradient is a
 * SegGradCamError with code 'numeric'.
 */
export class Explainer {
  private readonly passes: PassCache;
  /** The adapter as methods see it: batch scores and input gradients checked for NaN/Inf. */
  private readonly checked: ModelAdapter;
  readonly bottleneck: string;

  constructor(
    readonly adapter: ModelAdapter,
    readonly options: ExplainerOptions = {},
  ) {
    if (adapter.input.channels !== 1 && adapter.input.channels !== 3) {
      throw new SegGradCamError(`unsupported model: ${adapter.input.channels} input channels (expected 1 or 3)`, 'model');
    }
    const layers = adapter.layers();
    if (layers.length === 0) throw new SegGradCamError('unsupported model: no layer has a spatial [1, h, w, c] output', 'model');
    this.bottleneck = findBottleneck(layers, adapter.layerLinks?.()).name;
    const names = options.classNames;
    if (names && names.length !== this.classCount) {
      throw new SegGradCamError(`labels list ${names.length} classes but the model has ${this.classCount}`, 'class');
    }
    this.checked = checkedAdapter(adapter);
    this.passes = new PassCache((image, prime) => this.runForward(image, prime));
  }

  get classCount(): number {
    return classCount(this.adapter.output);
  }

  layers(): Array<LayerInfo & { bottleneck: boolean }> {
    return this.adapter.layers().map((l) => ({ ...l, bottleneck: l.name === this.bottleneck }));
  }

  /**
   * The prediction for an image (runs and caches the forward pass). `keepPass: false`: one plain
   * run of the model where the engine offers it (predictOutput), nothing cached for explanations.
   */
  async predict(image: RgbaImage, options: { keepPass?: boolean } = {}): Promise<Prediction> {
    if (options.keepPass === false && this.adapter.predictOutput && !this.passes.has(image)) {
      const { height, width, channels } = this.adapter.input;
      const input = imageToInput(image, height, width, channels, this.options);
      const logits = await this.adapter.predictOutput(input).finally(() => input.dispose());
      try {
        return this.predictionOf(logits);
      } finally {
        logits.dispose();
      }
    }
    const lease = await this.passes.acquire(image);
    lease.release();
    return lease.prediction;
  }

  async explain(image: RgbaImage, request: ExplainRequest): Promise<Explanation> {
    const method = methodOf(request);
    const layers = this.layersFor(method, request);
    const variants = augmentations(request.augment);
    // A new image and a plain gradient CAM: the adapter may take that gradient during the
    // forward pass (the part after the layer then runs once, not twice). A fixed region and
    // class make the objective known before it (an engine may then fuse both).
    const starts = !this.passes.has(image);
    let primedTarget = starts ? targetBeforePrediction(this.adapter.output, this.options.classNames, request, image) : undefined;
    const prime: GradientPrime | undefined =
      starts && isPlainGradientCam(method, request)
        ? {
            layer: layers[0].name,
            objective: primedTarget?.objective,
            seed: primedTarget ? undefined : predictionSeed(this.adapter.output, this.options.classNames, request, image),
            objectiveOf: (logits) => {
              primedTarget ??= this.targetOf(request, image, this.predictionOf(logits));
              return primedTarget.objective;
            },
          }
        : undefined;
    const lease = await this.passes.acquire(image, prime);
    try {
      const { prediction } = lease;
      const pass = checkedPass(lease.pass);
      // primedTarget is set when this call started the pass (before it, or from its logits).
      const target = primedTarget ?? this.targetOf(request, image, prediction);
      const inputRange = this.options.inputRange ?? [0, 1];
      const { cams, weights, scoreValue } = await averagedCams(this.checked, pass, method, layers, target.objective, variants, inputRange);
      let maps: CamMaps;
      try {
        checkScore([scoreValue]);
        maps = cams.length === 1 ? camMaps(cams[0], image, request.normalize) : meanOfHeatmaps(cams, image, request.normalize);
      } catch (err) {
        weights?.dispose();
        throw err;
      } finally {
        tf.dispose(cams);
      }
      const weightData = takeData(weights);
      let field: Uint8Array | undefined;
      if (request.truncate) {
        field = await receptiveField(pass, target.objective, image);
        const { max, empty } = normalizeInPlace(truncateHeatmap(maps.heatmap, field), request.normalize);
        maps = { ...maps, max: maps.max * max, empty };
      }
      return {
        ...this.result(image, { layer: layers[0], method, ...target, scoreValue, prediction }, maps, weightData),
        ...(layers.length > 1 ? { layers } : {}),
        augmentations: variants.length,
        ...(field ? { receptiveField: field } : {}),
        ...(request.normalize ? { normalize: request.normalize } : {}),
      };
    } finally {
      lease.release();
    }
  }

  /**
   * Several requests on one image. Requests with the same plain gradient CAM at the same layer
   * share one batched backward pass (K regions or classes, stacked cotangents) where the
   * adapter offers it; the others run one by one. Results come back in request order.
   */
  async explainMany(image: RgbaImage, requests: ExplainRequest[]): Promise<Explanation[]> {
    const results: Explanation[] = new Array(requests.length);
    // Gradients at one layer only: the forward pass may cache just what they need.
    const layers = new Set(requests.map((r) => (r.layers && r.layers.length > 1 ? '' : this.resolveLayer(r.layers?.[0] ?? r.layer).name)));
    const only = layers.size === 1 ? [...layers][0] : '';
    const lease = await this.passes.acquire(image, only ? { layer: only } : undefined);
    try {
      const { prediction } = lease;
      const pass = checkedPass(lease.pass);
      const groups = new Map<string, Array<{ index: number; method: CamMethod; layer: LayerInfo; normalize?: Normalization } & Target>>();
      for (const [index, r] of requests.entries()) {
        const method = methodOf(r);
        if (!isPlainGradientCam(method, r) || r.truncate || !pass.gradientBatch) {
          results[index] = await this.explain(image, { ...r, method, negative: undefined });
          continue;
        }
        const layer = this.resolveLayer(r.layers?.[0] ?? r.layer);
        const target = this.targetOf(r, image, prediction);
        const key = `${layer.name}\u0000${method.name}\u0000${JSON.stringify(methodOptionsOf(r))}`;
        const group = groups.get(key) ?? [];
        group.push({ index, method, layer, normalize: r.normalize, ...target });
        groups.set(key, group);
      }
      for (const group of groups.values()) {
        const grads = await (pass.gradientBatch as NonNullable<ForwardPass['gradientBatch']>)(
          group[0].layer.name,
          group.map((g) => g.objective),
        );
        this.fromGradients(image, prediction, group, grads).forEach((e, k) => (results[group[k].index] = e));
      }
      return results;
    } finally {
      lease.release();
    }
  }

  /**
   * One request at several layers (the explorer's layer grid). A plain gradient CAM without
   * truncation takes every layer's gradient from one backward pass where the adapter offers it
   * (each layer's gradient is on the way to the earliest); otherwise one explanation per layer.
   * Results come back in layer order.
   */
  async explainLayers(image: RgbaImage, request: ExplainRequest, layers: string[]): Promise<Explanation[]> {
    const method = methodOf(request);
    const perLayer = { ...request, method, layers: undefined, negative: undefined };
    const lease = await this.passes.acquire(image);
    try {
      const { prediction } = lease;
      const pass = checkedPass(lease.pass);
      if (!isPlainGradientCam(method, perLayer) || request.truncate || !pass.gradientLayers || layers.length < 2) {
        const out: Explanation[] = [];
        for (const layer of layers) out.push(await this.explain(image, { ...perLayer, layer }));
        return out;
      }
      const infos = layers.map((l) => this.resolveLayer(l));
      const target = this.targetOf(request, image, prediction);
      const grads = await pass.gradientLayers(
        infos.map((l) => l.name),
        target.objective,
      );
      return this.fromGradients(
        image,
        prediction,
        infos.map((layer) => ({ method, layer, normalize: request.normalize, ...target })),
        grads,
      );
    } finally {
      lease.release();
    }
  }

  /** Explanations from gradients computed together (item k: its method, layer and target; grads[k]); frees the gradients. */
  private fromGradients(
    image: RgbaImage,
    prediction: Prediction,
    items: Array<{ method: CamMethod; layer: LayerInfo; normalize?: Normalization } & Target>,
    grads: LayerGradient[],
  ): Explanation[] {
    try {
      return items.map((item, k) => {
        const { activations, gradients, score: scoreValue } = grads[k];
        const { cam, weights } = item.method.compute(activations, gradients);
        try {
          const maps = camMaps(cam, image, item.normalize);
          return {
            ...this.result(image, { ...item, scoreValue, prediction }, maps, takeData(weights)),
            augmentations: 1,
            ...(item.normalize ? { normalize: item.normalize } : {}),
          };
        } finally {
          tf.dispose([cam, weights ?? []]);
        }
      });
    } finally {
      for (const g of grads) tf.dispose([g.activations, g.gradients]);
    }
  }

  /** The class, the region M and the objective S of a request on the image's prediction. */
  private targetOf(request: ExplainRequest, image: RgbaImage, prediction: Prediction): Target {
    return targetOf(this.adapter.output, this.options.classNames, request, image, prediction);
  }

  /** An explanation's fields, in one order for `explain` and `explainMany`: what was explained, then the maps. */
  private result(
    image: RgbaImage,
    what: {
      layer: LayerInfo;
      method: Method;
      classIndex: number;
      contrastClassIndex?: number;
      contrastWeight?: number;
      score: ScoreKind;
      scoreValue: number;
      regionMask: Uint8Array;
      prediction: Prediction;
    },
    maps: CamMaps,
    weights: Float32Array | null,
  ) {
    const { layer, classIndex, contrastClassIndex, score, scoreValue, regionMask, prediction } = what;
    const contrast =
      contrastClassIndex === undefined
        ? {}
        : { contrastClassIndex, contrastClassName: this.options.classNames?.[contrastClassIndex], contrastWeight: what.contrastWeight };
    return {
      ...{
        layer,
        method: what.method.name,
        classIndex,
        className: this.options.classNames?.[classIndex],
        ...contrast,
        ...((what.method as { negative?: boolean }).negative === true ? { negative: true } : {}),
        score,
        scoreValue,
        regionMask,
        prediction,
      },
      ...{ cam: maps.cam, camWidth: maps.camWidth, camHeight: maps.camHeight, weights },
      ...{ heatmap: maps.heatmap, width: image.width, height: image.height, empty: maps.empty, camMax: maps.max },
    };
  }

  /** The layers a request explains: the input for input attributions, else `layers` or `layer`. */
  private layersFor(method: Method, request: ExplainRequest): LayerInfo[] {
    if (isModelMethod(method) && method.target === 'input') {
      if (request.layers && request.layers.length > 1) {
        throw new SegGradCamError(`${method.name} attributes to the input image; several layers do not apply`, 'usage');
      }
      return [this.resolveLayer(INPUT_LAYER)];
    }
    if (request.layers) {
      if (request.layers.length === 0) throw new SegGradCamError('the list of layers is empty', 'usage');
      return request.layers.map((l) => this.resolveLayer(l));
    }
    return [this.resolveLayer(request.layer)];
  }

  /** Frees the cached forward pass (now, or when the calls still using it finish; the next image replaces it anyway). */
  release(): void {
    this.passes.drop();
  }

  dispose(): void {
    this.release();
    this.adapter.dispose();
  }

  resolveLayer(name: string | undefined): LayerInfo {
    if (name === INPUT_LAYER) {
      const { height, width, channels } = this.adapter.input;
      return { name: INPUT_LAYER, type: 'Input', outputShape: [1, height, width, channels] };
    }
    const layers = this.adapter.layers();
    const wanted = name == null || name === 'bottleneck' ? this.bottleneck : name;
    const found = layers.find((l) => l.name === wanted);
    if (!found) throw unknownLayer(wanted, layers, ['bottleneck', INPUT_LAYER]);
    return found;
  }

  /** A class index from an index or a name; default: the prediction at the region. */
  resolveClass(request: ExplainRequest, ctx: ClassContext): number {
    return resolveClass(this.adapter.output, this.options.classNames, request, ctx);
  }

  private predictionOf(logits: tf.Tensor): Prediction {
    const out = this.adapter.output;
    return { labels: predictLabels(logits, out), width: out.width, height: out.height };
  }

  /** An image's forward pass and prediction (PassCache runs it once per image; `prime` goes to the adapter). */
  private async runForward(image: RgbaImage, prime?: GradientPrime): Promise<CachedPass> {
    const { height, width, channels } = this.adapter.input;
    const input = imageToInput(image, height, width, channels, this.options);
    let pass: ForwardPass;
    try {
      pass = await this.adapter.forward(input, prime);
    } finally {
      input.dispose();
    }
    try {
      return { pass, prediction: this.predictionOf(pass.predictionOutput ?? pass.output) };
    } catch (err) {
      pass.dispose();
      throw err;
    }
  }
}
