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
  type Objective,
} from './engine/contract.js';
import { findBottleneck } from './engine/bottleneck.js';
import { unknownLayer } from './engine/errors.js';
import { createMethod, isModelMethod, runMethod, type CamMethod, type Method, type MethodOptions } from './methods/index.js';
import { augmentations, flipObjective, type Augmentation, type AugmentOptions } from './postprocess/augment.js';
import { camToHeatmap, normalizeInPlace } from './postprocess/heatmap.js';
import { receptiveField, truncateHeatmap } from './postprocess/truncate.js';
import { predictLabels } from './prediction.js';
import { imageToInput, type InputOptions } from './preprocess.js';
import { classCount, regionObjective, type ScoreKind } from './region/objective.js';
import { regionToMask, toOutputCell, type Region } from './region/region.js';

export interface ExplainerOptions extends InputOptions {
  /** Class names by index (a labels file, or the model's metadata). */
  classNames?: string[];
}

export interface ExplainRequest {
  region: Region;
  /** Class index or name. Default: the class predicted most often in M (at the pixel for 'pixel'/'object'). */
  classId?: number | string;
  /** Layer name, 'bottleneck' (the default) or 'input' (the model input). Input-attribution methods ignore it. */
  layer?: string;
  score?: ScoreKind;
  /** A method name (see methodNames()) or a method object. Default 'seg-grad-cam'. */
  method?: string | Method;
  /** Options for a method given by name (each method reads its own). */
  methodOptions?: MethodOptions;
  /** Several layers: each layer's heatmap scaled to [0, 1], then their mean. Replaces `layer`. */
  layers?: string[];
  /** Test-time augmentation: also explain the flipped and brightened image, un-flip, average the raw maps. */
  augment?: boolean | AugmentOptions;
  /** Zero the heatmap outside the pixels M's score depends on (∂S/∂x ≠ 0), then rescale to [0, 1]. */
  truncate?: boolean;
}

export interface Prediction {
  /** Class per output pixel, outHeight × outWidth. */
  labels: Int32Array;
  width: number;
  height: number;
}

export interface Explanation {
  layer: LayerInfo;
  method: string;
  classIndex: number;
  className?: string;
  score: ScoreKind;
  /** S = Σ_M y^c at the image's cached forward pass. */
  scoreValue: number;
  /**
   * Raw CAM at layer resolution (after ReLU, not normalised), camHeight × camWidth; at the
   * model input's resolution for input attributions; with several layers, the mean of their
   * [0, 1] heatmaps at the image's size.
   */
  cam: Float32Array;
  camWidth: number;
  camHeight: number;
  /** α per channel, or null for methods without channel weights (and for several layers or augmentations). */
  weights: Float32Array | null;
  /** The CAM resized to the original image and scaled to [0, 1], width × height. */
  heatmap: Float32Array;
  width: number;
  height: number;
  /** True when the CAM is zero everywhere: the heatmap is all zeros, not a division by zero. */
  empty: boolean;
  camMax: number;
  /** M over the output grid. */
  regionMask: Uint8Array;
  prediction: Prediction;
  /** Every layer whose heatmaps were averaged (when `layers` was given). */
  layers?: LayerInfo[];
  /** Images whose maps were averaged: 1, or 1 + the augmentations. */
  augmentations?: number;
  /** With `truncate`: 1 where M's score depends on the pixel (width × height); the heatmap is 0 elsewhere. */
  receptiveField?: Uint8Array;
}

/**
 * The pipeline: image → model input → forward once (cached per image) → S = Σ_M y^c →
 * ∂S/∂A at the layer → method → heatmap on the image. Only the backward part re-runs for a new
 * region, class, layer or method of the same image.
 */
export class Explainer {
  private cached: { image: RgbaImage; pass: ForwardPass; prediction: Prediction } | null = null;
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
    this.bottleneck = findBottleneck(layers).name;
    const names = options.classNames;
    if (names && names.length !== this.classCount) {
      throw new SegGradCamError(`labels list ${names.length} classes but the model has ${this.classCount}`, 'class');
    }
  }

  get classCount(): number {
    return classCount(this.adapter.output);
  }

  layers(): Array<LayerInfo & { bottleneck: boolean }> {
    return this.adapter.layers().map((l) => ({ ...l, bottleneck: l.name === this.bottleneck }));
  }

  /** The prediction for an image (runs and caches the forward pass). */
  async predict(image: RgbaImage): Promise<Prediction> {
    return (await this.forward(image)).prediction;
  }

  async explain(image: RgbaImage, request: ExplainRequest): Promise<Explanation> {
    const method = methodOf(request);
    const layers = this.layersFor(method, request);
    const variants = augmentations(request.augment);
    // A new image and a gradient CAM at one layer: the adapter may take that gradient during the
    // forward pass (the part after the layer then runs once, not twice).
    // A fixed region and class make the objective known before it (an engine may then fuse both).
    let primedTarget = this.targetBeforePrediction(request, image);
    const primable = !isModelMethod(method) && method.usesGradients && layers.length === 1 && variants.length === 1 && variants[0].identity;
    const prime: GradientPrime | undefined = primable
      ? {
          layer: layers[0].name,
          objective: primedTarget?.objective,
          objectiveOf: (logits) => {
            primedTarget ??= this.targetOf(request, image, this.predictionOf(logits));
            return primedTarget.objective;
          },
        }
      : undefined;
    const { pass, prediction } = await this.forward(image, prime);
    const target = primedTarget ?? this.targetOf(request, image, prediction);

    const { cams, weights, scoreValue } = await this.averagedCams(pass, method, layers, target.objective, variants);
    let maps: CamMaps;
    try {
      maps = cams.length === 1 ? camMaps(cams[0], image) : meanOfHeatmaps(cams, image);
    } finally {
      tf.dispose(cams);
    }
    const weightData = takeData(weights);
    let field: Uint8Array | undefined;
    if (request.truncate) {
      field = await receptiveField(pass, target.objective, image);
      const { max, empty } = normalizeInPlace(truncateHeatmap(maps.heatmap, field));
      maps = { ...maps, max: maps.max * max, empty };
    }
    return {
      ...this.result(image, { layer: layers[0], method, ...target, scoreValue, prediction }, maps, weightData),
      ...(layers.length > 1 ? { layers } : {}),
      augmentations: variants.length,
      ...(field ? { receptiveField: field } : {}),
    };
  }

  /**
   * Several requests on one image. Requests with the same gradient-based CAM method at the same
   * single layer share one batched backward pass (K regions or classes, stacked cotangents) where
   * the adapter offers it; the others run one by one. Results come back in request order.
   */
  async explainMany(image: RgbaImage, requests: ExplainRequest[]): Promise<Explanation[]> {
    const results: Explanation[] = new Array(requests.length);
    // Gradients at one layer only: the forward pass may cache just what they need.
    const layers = new Set(requests.map((r) => (r.layers && r.layers.length > 1 ? '' : this.resolveLayer(r.layers?.[0] ?? r.layer).name)));
    const only = layers.size === 1 ? [...layers][0] : '';
    const { pass, prediction } = await this.forward(image, only ? { layer: only } : undefined);
    const groups = new Map<string, Array<{ index: number; method: CamMethod; layer: LayerInfo } & Target>>();
    for (const [index, r] of requests.entries()) {
      const method = methodOf(r);
      const single = !r.augment && !r.truncate && !(r.layers && r.layers.length > 1);
      if (isModelMethod(method) || !method.usesGradients || !single || !pass.gradientBatch) {
        results[index] = await this.explain(image, { ...r, method });
        continue;
      }
      const layer = this.resolveLayer(r.layers?.[0] ?? r.layer);
      const target = this.targetOf(r, image, prediction);
      const key = `${layer.name}\u0000${method.name}\u0000${JSON.stringify(r.methodOptions ?? {})}`;
      const group = groups.get(key) ?? [];
      group.push({ index, method, layer, ...target });
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
  }

  /** Explanations from gradients computed together (item k: its method, layer and target; grads[k]); frees the gradients. */
  private fromGradients(
    image: RgbaImage,
    prediction: Prediction,
    items: Array<{ method: CamMethod; layer: LayerInfo } & Target>,
    grads: LayerGradient[],
  ): Explanation[] {
    try {
      return items.map((item, k) => {
        const { activations, gradients, score: scoreValue } = grads[k];
        const { cam, weights } = item.method.compute(activations, gradients);
        try {
          return { ...this.result(image, { ...item, scoreValue, prediction }, camMaps(cam, image), takeData(weights)), augmentations: 1 };
        } finally {
          tf.dispose([cam, weights ?? []]);
        }
      });
    } finally {
      for (const g of grads) tf.dispose([g.activations, g.gradients]);
    }
  }

  /**
   * One request at several layers (the explorer's layer grid). A gradient CAM method without
   * augmentation or truncation takes every layer's gradient from one backward pass where the
   * adapter offers it (each layer's gradient is on the way to the earliest); otherwise one
   * explanation per layer. Results come back in layer order.
   */
  async explainLayers(image: RgbaImage, request: ExplainRequest, layers: string[]): Promise<Explanation[]> {
    const method = methodOf(request);
    const { pass, prediction } = await this.forward(image);
    if (
      isModelMethod(method) ||
      !method.usesGradients ||
      request.augment ||
      request.truncate ||
      !pass.gradientLayers ||
      layers.length < 2
    ) {
      const out: Explanation[] = [];
      for (const layer of layers) out.push(await this.explain(image, { ...request, method, layer, layers: undefined }));
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
      infos.map((layer) => ({ method, layer, ...target })),
      grads,
    );
  }

  /**
   * The target of a request whose region and class do not depend on the prediction (an explicit
   * class; a pixel, pixels, box, mask or the whole image), before any forward pass; else undefined.
   */
  private targetBeforePrediction(request: ExplainRequest, image: RgbaImage): Target | undefined {
    if (request.classId === undefined || request.region.kind === 'class' || request.region.kind === 'object') return undefined;
    if (this.cached && this.cached.image === image) return undefined;
    const out = this.adapter.output;
    // The labels are not read for these region forms and an explicit class.
    return this.targetOf(request, image, { labels: new Int32Array(out.height * out.width), width: out.width, height: out.height });
  }

  /** The class, the region M and the objective S of a request on the image's prediction. */
  private targetOf(request: ExplainRequest, image: RgbaImage, prediction: Prediction): Target {
    const out = this.adapter.output;
    const grid = {
      imageWidth: image.width,
      imageHeight: image.height,
      outWidth: out.width,
      outHeight: out.height,
      labels: prediction.labels,
    };
    const classIndex = this.resolveClass(request, grid);
    const regionMask = regionToMask(request.region, { ...grid, classIndex, className: this.options.classNames?.[classIndex] });
    const score = request.score ?? 'logits';
    return { classIndex, regionMask, score, objective: regionObjective(out, classIndex, regionMask, score) };
  }

  /** An explanation's fields, in one order for `explain` and `explainMany`: what was explained, then the maps. */
  private result(
    image: RgbaImage,
    what: {
      layer: LayerInfo;
      method: Method;
      classIndex: number;
      score: ScoreKind;
      scoreValue: number;
      regionMask: Uint8Array;
      prediction: Prediction;
    },
    maps: CamMaps,
    weights: Float32Array | null,
  ) {
    const { layer, classIndex, score, scoreValue, regionMask, prediction } = what;
    return {
      ...{
        layer,
        method: what.method.name,
        classIndex,
        className: this.options.classNames?.[classIndex],
        score,
        scoreValue,
        regionMask,
        prediction,
      },
      ...{ cam: maps.cam, camWidth: maps.camWidth, camHeight: maps.camHeight, weights },
      ...{ heatmap: maps.heatmap, width: image.width, height: image.height, empty: maps.empty, camMax: maps.max },
    };
  }

  /** Runs the method per layer and augmentation; the raw maps of the augmentations are averaged (flips undone). */
  private async averagedCams(
    pass: ForwardPass,
    method: Method,
    layers: LayerInfo[],
    objective: Objective,
    variants: Augmentation[],
  ): Promise<{ cams: tf.Tensor2D[]; weights: tf.Tensor1D | null; scoreValue: number }> {
    const inputRange = this.options.inputRange ?? [0, 1];
    const sums: Array<tf.Tensor2D | null> = layers.map(() => null);
    // Channel weights only mean something for one map of one layer.
    const keepWeights = variants.length === 1 && layers.length === 1;
    let weights: tf.Tensor1D | null = null;
    let scoreValue = Number.NaN;
    try {
      for (const v of variants) {
        let vPass = pass;
        if (!v.identity) {
          const x = v.apply(pass.activation(INPUT_LAYER) as tf.Tensor4D, inputRange);
          vPass = await this.adapter.forward(x).finally(() => x.dispose());
        }
        try {
          const context = {
            adapter: this.adapter,
            pass: vPass,
            input: vPass.activation(INPUT_LAYER) as tf.Tensor4D,
            objective: v.flip ? flipObjective(objective, this.adapter.output) : objective,
            inputRange,
          };
          for (let i = 0; i < layers.length; i++) {
            const r = await runMethod(method, { ...context, layer: layers[i] });
            let cam = r.cam;
            if (v.flip) {
              cam = tf.reverse(r.cam, 1);
              r.cam.dispose();
            }
            const prev = sums[i];
            sums[i] = prev ? (tf.add(prev, cam) as tf.Tensor2D) : cam;
            if (prev) tf.dispose([prev, cam]);
            if (v.identity && i === 0) scoreValue = r.score;
            if (keepWeights) weights = r.weights;
            else r.weights?.dispose();
          }
        } finally {
          if (vPass !== pass) vPass.dispose();
        }
      }
      const cams = sums.map((s) => {
        if (variants.length === 1) return s as tf.Tensor2D;
        const mean = tf.div(s as tf.Tensor2D, variants.length) as tf.Tensor2D;
        s?.dispose();
        return mean;
      });
      return { cams, weights, scoreValue };
    } catch (err) {
      tf.dispose(sums.filter((s): s is tf.Tensor2D => s !== null));
      weights?.dispose();
      throw err;
    }
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

  /** Frees the cached forward pass (the next image replaces it anyway). */
  release(): void {
    this.cached?.pass.dispose();
    this.cached = null;
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
  resolveClass(
    request: ExplainRequest,
    ctx: { imageWidth: number; imageHeight: number; outWidth: number; outHeight: number; labels: Int32Array },
  ): number {
    const n = this.classCount;
    const id = request.classId;
    if (typeof id === 'number' || (typeof id === 'string' && /^\d+$/.test(id))) {
      const c = Number(id);
      if (c < 0 || c >= n) throw new SegGradCamError(`class ${c} is out of range: the model has classes 0..${n - 1}`, 'class');
      return c;
    }
    if (typeof id === 'string') {
      const names = this.options.classNames;
      const c = names ? names.indexOf(id) : -1;
      if (c < 0) {
        const known = names ? `known classes: ${names.join(', ')}` : 'no class names are known (give a labels file or an index)';
        throw new SegGradCamError(`unknown class '${id}'; ${known}`, 'class');
      }
      return c;
    }
    const r = request.region;
    if (r.kind === 'class') throw new SegGradCamError('the class region needs a class (--class)', 'usage');
    if (r.kind === 'pixel' || r.kind === 'object') {
      if (r.x >= 0 && r.y >= 0 && r.x < ctx.imageWidth && r.y < ctx.imageHeight) {
        const [ox, oy] = toOutputCell(r.x, r.y, ctx);
        return ctx.labels[oy * ctx.outWidth + ox];
      }
    }
    // The class predicted most often inside M (M does not depend on the class for these forms).
    const m = regionToMask(r, { ...ctx, classIndex: 0 });
    const counts = new Map<number, number>();
    for (let i = 0; i < m.length; i++) if (m[i]) counts.set(ctx.labels[i], (counts.get(ctx.labels[i]) ?? 0) + 1);
    let best = 0;
    let bestCount = -1;
    for (const [c, k] of counts) {
      if (k > bestCount || (k === bestCount && c < best)) {
        best = c;
        bestCount = k;
      }
    }
    return best;
  }

  private predictionOf(logits: tf.Tensor): Prediction {
    const out = this.adapter.output;
    return { labels: predictLabels(logits, out), width: out.width, height: out.height };
  }

  /** The image's forward pass, cached; `prime` is passed on to the adapter when the pass is new. */
  private async forward(image: RgbaImage, prime?: GradientPrime): Promise<{ pass: ForwardPass; prediction: Prediction }> {
    if (this.cached && this.cached.image === image) return this.cached;
    this.release();
    const { height, width, channels } = this.adapter.input;
    const input = imageToInput(image, height, width, channels, this.options);
    try {
      const pass = await this.adapter.forward(input, prime);
      const prediction = this.predictionOf(pass.output);
      this.cached = { image, pass, prediction };
      return this.cached;
    } finally {
      input.dispose();
    }
  }
}

/** The class, region and objective a request explains. */
interface Target {
  classIndex: number;
  regionMask: Uint8Array;
  score: ScoreKind;
  objective: Objective;
}

/** A CAM as data, and its heatmap on the image. */
interface CamMaps {
  cam: Float32Array;
  camWidth: number;
  camHeight: number;
  /** camToHeatmap's result: the heatmap in [0, 1], the CAM's maximum, and whether it was all zero. */
  heatmap: Float32Array;
  max: number;
  empty: boolean;
}

function methodOf(request: ExplainRequest): Method {
  return typeof request.method === 'object' ? request.method : createMethod(request.method ?? 'seg-grad-cam', request.methodOptions);
}

/** A raw CAM and its heatmap on the image. */
function camMaps(cam: tf.Tensor2D, image: RgbaImage): CamMaps {
  const [camHeight, camWidth] = cam.shape;
  return { cam: cam.dataSync().slice() as Float32Array, camWidth, camHeight, ...camToHeatmap(cam, image.width, image.height) };
}

/** Several layers: the mean of their [0, 1] heatmaps, which becomes the "cam" (at the image's size). */
function meanOfHeatmaps(cams: tf.Tensor2D[], image: RgbaImage): CamMaps {
  const mean = new Float32Array(image.width * image.height);
  for (const cam of cams) {
    const h = camToHeatmap(cam, image.width, image.height).heatmap;
    for (let i = 0; i < mean.length; i++) mean[i] += h[i] / cams.length;
  }
  // The copy is taken before normalizeInPlace scales `mean` (which becomes the heatmap).
  return { cam: mean.slice(), camWidth: image.width, camHeight: image.height, ...normalizeInPlace(mean) };
}

/** A tensor's values (a copy), the tensor freed; null stays null. */
function takeData(t: tf.Tensor | null): Float32Array | null {
  if (!t) return null;
  const data = t.dataSync().slice() as Float32Array;
  t.dispose();
  return data;
}
