import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from './errors.js';
import type { RgbaImage } from './image.js';
import type { ForwardPass, LayerInfo, ModelAdapter } from './model/adapter.js';
import { findBottleneck } from './model/bottleneck.js';
import { createMethod, type CamMethod } from './methods/index.js';
import { camToHeatmap } from './postprocess/heatmap.js';
import { predictLabels } from './prediction.js';
import { imageToInput, type InputOptions } from './preprocess.js';
import { classCount, regionObjective, type ScoreKind } from './target/objective.js';
import { regionToMask, toOutputCell, type Region } from './target/region.js';

export interface ExplainerOptions extends InputOptions {
  /** Class names by index (a labels file, or the model's metadata). */
  classNames?: string[];
}

export interface ExplainRequest {
  region: Region;
  /** Class index or name. Default: the class predicted most often in M (at the pixel for 'pixel'/'object'). */
  classId?: number | string;
  /** Layer name, or 'bottleneck' (the default). */
  layer?: string;
  score?: ScoreKind;
  method?: string | CamMethod;
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
  /** Raw CAM at layer resolution (after ReLU, not normalised), camHeight × camWidth. */
  cam: Float32Array;
  camWidth: number;
  camHeight: number;
  /** α per channel, or null for methods without channel weights. */
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
    const method = typeof request.method === 'object' ? request.method : createMethod(request.method ?? 'seg-grad-cam');
    const layer = this.resolveLayer(request.layer);
    const { pass, prediction } = await this.forward(image);
    const out = this.adapter.output;
    const ctxBase = { imageWidth: image.width, imageHeight: image.height, outWidth: out.width, outHeight: out.height, labels: prediction.labels };
    const classIndex = this.resolveClass(request, ctxBase);
    const regionMask = regionToMask(request.region, { ...ctxBase, classIndex });
    const score = request.score ?? 'logits';
    const objective = regionObjective(out, classIndex, regionMask, score);

    const { activations, gradients, score: scoreValue } = await pass.gradient(layer.name, objective);
    try {
      const { cam, weights } = method.compute(activations, gradients);
      const [camHeight, camWidth] = cam.shape;
      const camData = cam.dataSync().slice() as Float32Array;
      const weightData = weights ? (weights.dataSync().slice() as Float32Array) : null;
      const { heatmap, max, empty } = camToHeatmap(cam, image.width, image.height);
      cam.dispose();
      weights?.dispose();
      return {
        layer,
        method: method.name,
        classIndex,
        className: this.options.classNames?.[classIndex],
        score,
        scoreValue,
        cam: camData,
        camWidth,
        camHeight,
        weights: weightData,
        heatmap,
        width: image.width,
        height: image.height,
        empty,
        camMax: max,
        regionMask,
        prediction,
      };
    } finally {
      activations.dispose();
      gradients.dispose();
    }
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
    const layers = this.adapter.layers();
    const wanted = name == null || name === 'bottleneck' ? this.bottleneck : name;
    const found = layers.find((l) => l.name === wanted);
    if (!found) {
      const shown = layers.map((l) => l.name);
      const list = shown.length > 40 ? [...shown.slice(0, 40), `… (${shown.length - 40} more)`] : shown;
      throw new SegGradCamError(`unknown layer '${wanted}'; valid layers: bottleneck, ${list.join(', ')}`, 'layer');
    }
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
    let m: Uint8Array;
    try {
      m = regionToMask(r, { ...ctx, classIndex: 0 });
    } catch (err) {
      if (err instanceof SegGradCamError) throw err;
      throw err;
    }
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

  private async forward(image: RgbaImage): Promise<{ pass: ForwardPass; prediction: Prediction }> {
    if (this.cached && this.cached.image === image) return this.cached;
    this.release();
    const { height, width, channels } = this.adapter.input;
    const input = imageToInput(image, height, width, channels, this.options);
    try {
      const pass = await this.adapter.forward(input);
      const out = this.adapter.output;
      const prediction = { labels: predictLabels(pass.output, out), width: out.width, height: out.height };
      this.cached = { image, pass, prediction };
      return this.cached;
    } finally {
      input.dispose();
    }
  }
}

/** For tests and tools: the number of live tensors, to check that nothing leaks. */
export const liveTensors = (): number => tf.memory().numTensors;
