/**
 * The evaluation protocol of docs/evaluation/protocol.md, run end to end on two U-Nets
 * trained on the synthetic TextureMNIST-style set with and without the planted context bias:
 * bias detection, deletion/insertion, cascading randomisation (sanity checks), the layer sweep,
 * α across locations and the cost of each method. Node only (models and tiles come from disk).
 *
 * Everything but the timings is a pure function of the options: tiles are generated from the
 * seed, ties and random orders use seeded streams, and the wasm backend is single-threaded.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createTextureMnist } from '../data/assets-node.js';
import { hash32, mulberry32 } from '../data/prng.js';
import { isTextureName } from '../data/textures.js';
import type { TextureMnistSample } from '../data/texture-mnist.js';
import { SegGradCamError } from '../errors.js';
import { Explainer, type Explanation } from '../explain.js';
import { classNamesFromMetadata } from '../io/labels.js';
import type { RgbaImage } from '../image.js';
import { baselineFor, type Baseline } from '../methods/baseline.js';
import { createMethod, isModelMethod, methodNames, type Method, type MethodOptions } from '../methods/index.js';
import type { LayerInfo, Objective } from '../engine/contract.js';
import { readModelArtifacts } from '../engine/tfjs/load-node.js';
import { adapterFromArtifacts } from '../engine/tfjs/load.js';
import { imageToInput } from '../preprocess.js';
import { resizeLabelsNearest } from '../render/resize.js';
import { regionObjective } from '../region/objective.js';
import { mask as maskRegion, pixel as pixelRegion, type Region } from '../region/region.js';
import { areaShare, biasShare } from './bias.js';
import { instrumentAdapter, type Instrumented } from './cost.js';
import { cosineMatrix, pca } from './embedding.js';
import { curveArea, heatmapOrder, perturbationCurve, randomOrder, type BatchScorer } from './perturbation.js';
import { cascadeSteps, randomizeLayers, snapshotWeights, stringHash } from './randomize.js';
import { auroc, median, spearman } from './stats.js';

/** The default set: Seg-Grad-CAM and its CAM relatives at a layer, and input attributions. */
export const DEFAULT_METHODS = [
  'seg-grad-cam',
  'hires-cam',
  'grad-cam++',
  'xgrad-cam',
  'layer-cam',
  'score-cam',
  'eigen-cam',
  'saliency',
  'gradient-x-input',
  'integrated-gradients',
  'grid-saliency',
];

/** Per-method options of the evaluation: capped so a report runs in minutes. */
export const DEFAULT_METHOD_OPTIONS: Record<string, MethodOptions> = {
  'score-cam': { maxChannels: 16, batchSize: 16 },
  'integrated-gradients': { steps: 16, batchSize: 17 },
  'grid-saliency': { iterations: 20, maskResolution: 8 },
  smoothgrad: { samples: 8, batchSize: 8, seed: 0 },
};

/** Held-out tiles are taken from this index on: disjoint from the training run's final-evaluation (0…) and validation (1 000 000…) tiles. */
export const TILE_OFFSET = 2_000_000;
/** The behavioural check scans held-out tiles of the 'uniform' set from this index on. */
export const CHECK_OFFSET = 3_000_000;

export interface EvaluationOptions {
  /** model.json paths: the first is the biased model, the second (optional) the unbiased control. */
  models: string[];
  /** Names for the models in the report (default 'biased', 'unbiased'). */
  labels?: string[];
  /** Held-out tiles with the bias digit, explained per model and method (bias detection, cost). */
  tiles: number;
  /** The first `curveTiles` of them also get deletion/insertion curves. */
  curveTiles: number;
  /** The first `sanityTiles` of them are explained again at every step of the cascading randomisation (first model). */
  sanityTiles: number;
  /** α across locations: tiles and pixels per tile (Seg-Grad-CAM at the bottleneck). */
  alphaTiles: number;
  alphaPixels: number;
  methods: string[];
  /** Layer names (or 'bottleneck'); default: an early encoder layer, the bottleneck, a decoder layer. */
  layers?: string[];
  /**
   * Behavioural check of the shortcut: held-out tiles scanned from a set where the bias texture is
   * an ordinary background (default 0 = skip); on them, the digit's IoU on and off the bias
   * texture, and how often other digits on the bias texture are labelled as the bias digit.
   */
  checkTiles?: number;
  /** Deletion/insertion steps k. */
  steps: number;
  /** Random orders per tile (the reference curve). */
  randomOrders: number;
  seed: number;
  /** Options per method name (default DEFAULT_METHOD_OPTIONS). */
  methodOptions?: Record<string, MethodOptions>;
  /** What deleted pixels become (default 'black', as RISE) and what insertion starts from (default 'blurred'). */
  deletionBaseline?: Baseline;
  insertionBaseline?: Baseline;
}

export interface ProgressEvent {
  phase: string;
  done: number;
  total: number;
}

export interface ModelInfo {
  label: string;
  path: string;
  params: number | null;
  /** Held-out mean IoU from the model's training.json (or a checkpoint's last validation IoU). */
  meanIou: number | null;
  iouNote: string;
  /** True when the model is a training checkpoint rather than a final model. */
  checkpoint: boolean;
  /** The training command line (from training.json). */
  training?: string;
}

export interface LayerEntry {
  name: string;
  /** 'encoder', 'bottleneck', 'decoder' or 'input' (input attributions). */
  role: string;
  shape: number[];
}

export interface TileInfo {
  index: number;
  biasPixels: number;
  /** Fraction of the tile that shows the bias texture (a uniform heatmap's share: the chance level). */
  biasArea: number;
  digits: number[];
}

export interface ConditionResult {
  method: string;
  /** Layer name, or 'input' for input attributions. */
  layer: string;
  role: string;
  /** Bias share per model and tile (NaN: empty heatmap). */
  shares: number[][];
  /** AUROC separating the first model's shares from the second's (NaN without a control). */
  auroc: number;
  /** Deletion/insertion AUC per model and curve tile. */
  deletion: number[][];
  insertion: number[][];
  /** Mean curves per model (k + 1 values). */
  deletionCurve: number[][];
  insertionCurve: number[][];
  /** Median model passes per explanation (after the image's shared forward pass). */
  forward: number;
  backward: number;
  /** Wall time per explanation, ms (every model and tile). Timing: not reproducible. */
  ms: number[];
  /** Spearman correlation per cascade step and sanity tile (0 for an empty randomised map; tiles whose original map is empty are left out). */
  sanity: number[][];
  /** Randomised heatmaps that were empty, per cascade step. */
  sanityEmpty: number[];
}

export interface AlphaPoint {
  tile: number;
  /** Index of the digit instance in the tile's `digits`. */
  instance: number;
  x: number;
  y: number;
  /** Distance to the digit frame's centre, in units of the frame side. */
  distance: number;
}

export interface AlphaResult {
  model: string;
  layer: string;
  classIndex: number;
  points: AlphaPoint[];
  /** Cosine similarity matrix, n × n row-major, rows in the order of `points` (by instance, then distance). */
  cosine: number[];
  pca: { coords: number[][]; explained: number[] };
  withinInstance: number;
  betweenInstances: number;
  /** Pixels whose α vector was all zeros (left out). */
  zero: number;
}

/** Does the model use the shortcut? Its behaviour on tiles where the bias texture is an ordinary background. */
export interface BehaviourResult {
  model: string;
  /** IoU of the bias class over the tiles with the bias digit on the bias texture, and on other textures. */
  iouOnBias: number;
  iouOffBias: number;
  tilesOnBias: number;
  tilesOffBias: number;
  /** Tiles on the bias texture without the bias digit: the share of their digit pixels labelled as the bias class, and of their background pixels. */
  tilesWithout: number;
  digitPixelsAsBias: number;
  backgroundPixelsAsBias: number;
}

export interface Example {
  tile: number;
  image: RgbaImage;
  /** The bias digit's pixels (M). */
  region: Uint8Array;
  /** Heatmaps by model label, then condition key `method@layer`. */
  heatmaps: Record<string, Record<string, Float32Array>>;
}

export interface EvaluationResults {
  options: Required<Omit<EvaluationOptions, 'labels' | 'layers'>> & { labels: string[]; layers: string[] };
  dataset: {
    name: string;
    seed: number;
    size: number;
    biasDigit: number;
    biasClass: number;
    biasTexture: string;
    tileOffset: number;
    scanned: number;
    checkOffset: number;
  };
  models: ModelInfo[];
  layers: LayerEntry[];
  tiles: TileInfo[];
  conditions: ConditionResult[];
  random: { deletion: number[][]; insertion: number[][]; deletionCurve: number[][]; insertionCurve: number[][] };
  cascade: { model: string; steps: Array<{ name: string; layers: string[] }>; note?: string };
  alpha: AlphaResult[];
  behaviour: BehaviourResult[];
  example: Example | null;
  machine: { cpus: number; cpu: string; memoryGb: number; platform: string; node: string; tfjs: string; backend: string };
  /** Timing: not reproducible. */
  timing: { wallSeconds: number; phases: Record<string, number> };
}

export const conditionKey = (method: string, layer: string): string => `${method}@${layer}`;

/** The early-encoder / bottleneck / decoder layers: maps at half the input size, last of each side; else the first and last layer. */
export function defaultLayers(layers: LayerInfo[], bottleneck: string, inputSize: number): string[] {
  const at = layers.findIndex((l) => l.name === bottleneck);
  const half = (l: LayerInfo) => l.outputShape[1] === inputSize / 2;
  const enc = layers.slice(0, at).filter(half);
  const dec = layers.slice(at + 1).filter(half);
  const early = enc.length > 0 ? enc[enc.length - 1].name : layers[0].name;
  const late = dec.length > 0 ? dec[dec.length - 1].name : layers[layers.length - 1].name;
  return [...new Set([early, bottleneck, late])];
}

interface Loaded {
  info: ModelInfo;
  explainer: Explainer;
  counter: Instrumented;
  dataset: Record<string, unknown> | undefined;
}

async function modelInfo(path: string, label: string, explainer: Explainer): Promise<ModelInfo> {
  const dir = dirname(path);
  const adapter = explainer.adapter;
  const params = adapter.parameterCount?.() ?? null;
  try {
    const t = JSON.parse(await readFile(join(dir, 'training.json'), 'utf8')) as {
      finalMetrics?: { meanIou?: number; tiles?: number };
      steps?: number;
      command?: string;
    };
    const iou = t.finalMetrics?.meanIou;
    if (typeof iou === 'number') {
      return {
        label,
        path,
        params,
        meanIou: iou,
        iouNote: `held-out mean IoU over ${t.finalMetrics?.tiles ?? '?'} tiles after ${t.steps ?? '?'} steps (training.json)`,
        checkpoint: false,
        ...(typeof t.command === 'string' ? { training: t.command } : {}),
      };
    }
  } catch {
    // no training.json: maybe a checkpoint
  }
  try {
    const s = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as {
      step?: number;
      options?: { valTiles?: number };
      history?: Array<{ valIou?: number }>;
    };
    const last = [...(s.history ?? [])].reverse().find((h) => typeof h.valIou === 'number');
    return {
      label,
      path,
      params,
      meanIou: last?.valIou ?? null,
      iouNote: `training checkpoint at step ${s.step ?? '?'}: validation mean IoU over ${s.options?.valTiles ?? '?'} held-out tiles (no final training.json)`,
      checkpoint: true,
    };
  } catch {
    return { label, path, params, meanIou: null, iouNote: 'no training.json next to the model', checkpoint: false };
  }
}

/** Which instance of the bias digit a pixel belongs to (the last placed one whose frame holds it). */
function instanceAt(sample: TextureMnistSample, digit: number, x: number, y: number): number {
  for (let i = sample.digits.length - 1; i >= 0; i--) {
    const d = sample.digits[i];
    if (d.digit === digit && x >= d.x && y >= d.y && x < d.x + d.size && y < d.y + d.size) return i;
  }
  return -1;
}

function tensorData(t: tf.Tensor): Float32Array {
  const d = t.dataSync() as Float32Array;
  return d.slice();
}

/**
 * Runs the evaluation. `onProgress` is called after each unit of work (an explanation with its
 * curves, or an α pixel).
 */
export async function runEvaluation(options: EvaluationOptions, onProgress?: (p: ProgressEvent) => void): Promise<EvaluationResults> {
  const started = performance.now();
  const phases: Record<string, number> = {};
  const o = options;
  if (o.models.length < 1 || o.models.length > 2)
    throw new SegGradCamError(`give one or two models (biased first, then the unbiased control), got ${o.models.length}`, 'usage');
  for (const m of o.methods)
    if (!methodNames().includes(m)) throw new SegGradCamError(`unknown method '${m}'; valid methods: ${methodNames().join(', ')}`, 'usage');
  if (o.methods.length === 0) throw new SegGradCamError('the list of methods is empty', 'usage');
  for (const [k, v] of Object.entries({ tiles: o.tiles, steps: o.steps }))
    if (!Number.isInteger(v) || v < 1) throw new SegGradCamError(`${k} must be a positive integer, got ${v}`, 'usage');
  for (const [k, v] of Object.entries({
    curveTiles: o.curveTiles,
    sanityTiles: o.sanityTiles,
    alphaTiles: o.alphaTiles,
    alphaPixels: o.alphaPixels,
    randomOrders: o.randomOrders,
  }))
    if (!Number.isInteger(v) || v < 0) throw new SegGradCamError(`${k} must be an integer >= 0, got ${v}`, 'usage');
  const labels = o.labels ?? ['biased', 'unbiased'].slice(0, o.models.length);
  const methodOptions = { ...DEFAULT_METHOD_OPTIONS, ...(o.methodOptions ?? {}) };
  const delBaseline = o.deletionBaseline ?? 'black';
  const insBaseline = o.insertionBaseline ?? 'blurred';
  const curveTiles = Math.min(o.curveTiles, o.tiles);
  const sanityTiles = Math.min(o.sanityTiles, o.tiles);
  const alphaTiles = Math.min(o.alphaTiles, o.tiles);

  // Models.
  const loaded: Loaded[] = [];
  try {
    for (let i = 0; i < o.models.length; i++) {
      const artifacts = await readModelArtifacts(o.models[i]);
      const counter = instrumentAdapter(await adapterFromArtifacts(artifacts));
      const explainer = new Explainer(counter.adapter, {
        classNames: classNamesFromMetadata(artifacts.userDefinedMetadata),
      });
      const info = await modelInfo(o.models[i], labels[i], explainer);
      const dataset = (artifacts.userDefinedMetadata as { dataset?: Record<string, unknown> } | undefined)?.dataset;
      loaded.push({ info, explainer, counter, dataset });
    }
    const first = loaded[0].explainer;
    const { height: H, width: W, channels: C } = first.adapter.input;
    if (H !== W) throw new SegGradCamError(`the evaluation needs a square model input, got ${H}x${W}`, 'model');
    for (const l of loaded) {
      const inp = l.explainer.adapter.input;
      if (inp.height !== H || inp.width !== W || inp.channels !== C)
        throw new SegGradCamError('the models must take the same input size', 'model');
      if (l.explainer.classCount < 2) throw new SegGradCamError('the models must have class outputs', 'model');
    }

    // The tiles: held-out, with the bias digit on the bias background (biasStrength 1 for every model: identical inputs).
    const recipe = loaded[0].dataset ?? {};
    const biasDigit = typeof recipe.biasDigit === 'number' ? recipe.biasDigit : 3;
    const biasClass = typeof recipe.biasClass === 'number' ? recipe.biasClass : biasDigit + 1;
    const biasTexture = typeof recipe.biasTexture === 'string' && isTextureName(recipe.biasTexture) ? recipe.biasTexture : 'brick';
    if (biasClass >= first.classCount)
      throw new SegGradCamError(`the bias class ${biasClass} is out of range for a model with ${first.classCount} classes`, 'model');
    const ds = await createTextureMnist({ size: H, seed: o.seed, biasDigit, biasTexture, biasStrength: 1, biasTextureAtZero: 'unused' });
    const samples: TextureMnistSample[] = [];
    const tiles: TileInfo[] = [];
    const minPixels = Math.max(4, Math.round(0.01 * H * W));
    let scanned = 0;
    for (let idx = TILE_OFFSET; samples.length < o.tiles; idx++) {
      scanned++;
      if (scanned > 200 * o.tiles + 1000)
        throw new SegGradCamError(`found only ${samples.length} held-out tiles with the bias digit in ${scanned} tiles`, 'usage');
      const s = ds.sample('heldout', idx);
      if (!s.hasBiasDigit || !s.biasBackground) continue;
      let n = 0;
      for (const v of s.labels) if (v === biasClass) n++;
      if (n < minPixels) continue;
      samples.push(s);
      tiles.push({ index: idx, biasPixels: n, biasArea: areaShare(s.biasMask), digits: s.digits.map((d) => d.digit) });
    }

    // Layers.
    const layerNames = (o.layers ?? defaultLayers(first.adapter.layers(), first.bottleneck, H)).map((l) => first.resolveLayer(l).name);
    const order = first.adapter.layers().map((l) => l.name);
    const bottleneckAt = order.indexOf(first.bottleneck);
    const layers: LayerEntry[] = layerNames.map((name) => {
      const info = first.resolveLayer(name);
      const at = order.indexOf(name);
      return {
        name,
        role: name === first.bottleneck ? 'bottleneck' : at < bottleneckAt ? 'encoder' : 'decoder',
        shape: info.outputShape.slice(1),
      };
    });
    for (const l of loaded.slice(1)) for (const name of layerNames) l.explainer.resolveLayer(name);

    // One method object per name (methods keep no state between explanations).
    const methods = new Map<string, Method>(o.methods.map((m) => [m, createMethod(m, methodOptions[m])]));
    const conditions: ConditionResult[] = [];
    for (const m of o.methods) {
      const method = methods.get(m) as Method;
      const atInput = isModelMethod(method) && method.target === 'input';
      for (const layer of atInput ? ['input'] : layerNames) {
        conditions.push({
          method: m,
          layer,
          role: atInput ? 'input' : (layers.find((l) => l.name === layer)?.role ?? '?'),
          shares: loaded.map(() => []),
          auroc: Number.NaN,
          deletion: loaded.map(() => []),
          insertion: loaded.map(() => []),
          deletionCurve: loaded.map(() => new Array<number>(o.steps + 1).fill(0)),
          insertionCurve: loaded.map(() => new Array<number>(o.steps + 1).fill(0)),
          forward: Number.NaN,
          backward: Number.NaN,
          ms: [],
          sanity: [],
          sanityEmpty: [],
        });
      }
    }
    const random = {
      deletion: loaded.map(() => [] as number[]),
      insertion: loaded.map(() => [] as number[]),
      deletionCurve: loaded.map(() => new Array<number>(o.steps + 1).fill(0)),
      insertionCurve: loaded.map(() => new Array<number>(o.steps + 1).fill(0)),
    };

    // Cascade (first model, a LayersModel).
    const adapter0 = first.adapter;
    const weights = adapter0.layersModel?.();
    const cascade = weights ? cascadeSteps(weights) : [];
    const cascadeNote = weights ? undefined : 'the sanity check needs a LayersModel; skipped';

    const alphaPerModel = alphaTiles > 0 && o.alphaPixels > 0;
    const checkTiles = o.checkTiles ?? 0;
    if (!Number.isInteger(checkTiles) || checkTiles < 0)
      throw new SegGradCamError(`checkTiles must be an integer >= 0, got ${checkTiles}`, 'usage');
    const total =
      loaded.length * checkTiles +
      loaded.length * o.tiles * conditions.length +
      cascade.length * sanityTiles * conditions.length +
      (alphaPerModel ? loaded.length * alphaTiles * o.alphaPixels : 0);
    let done = 0;
    const tick = (phase: string) => onProgress?.({ phase, done: ++done, total });

    const counts = new Map<string, { forward: number[]; backward: number[] }>();
    const originals = new Map<string, Float32Array>(); // key|tile → heatmap (first model)
    /** M: the bias digit's pixels of a tile. */
    const biasPixels = (s: TextureMnistSample) => Uint8Array.from(s.labels, (v) => (v === biasClass ? 1 : 0));
    /** A condition's explanation of a tile (M = the bias digit, class = the bias class). */
    const explainCondition = (explainer: Explainer, s: TextureMnistSample, region: Region, cond: ConditionResult) =>
      explainer.explain(s.image, {
        region,
        classId: biasClass,
        layer: cond.layer === 'input' ? undefined : cond.layer,
        method: methods.get(cond.method),
      });
    const example: Example = { tile: tiles[0].index, image: samples[0].image, region: biasPixels(samples[0]), heatmaps: {} };

    // Phase 0: is the shortcut there? The bias texture as an ordinary background (held-out tiles from CHECK_OFFSET on).
    let t0 = performance.now();
    const behaviour: BehaviourResult[] = [];
    if (checkTiles > 0) {
      const uniform = await createTextureMnist({
        size: H,
        seed: o.seed,
        biasDigit,
        biasTexture,
        biasStrength: 0,
        biasTextureAtZero: 'uniform',
      });
      for (const { explainer, info } of loaded) {
        const on = [0, 0, 0];
        const off = [0, 0, 0];
        const b: BehaviourResult = {
          model: info.label,
          iouOnBias: Number.NaN,
          iouOffBias: Number.NaN,
          tilesOnBias: 0,
          tilesOffBias: 0,
          tilesWithout: 0,
          digitPixelsAsBias: 0,
          backgroundPixelsAsBias: 0,
        };
        let digitPx = 0;
        let digitAs = 0;
        let bgPx = 0;
        let bgAs = 0;
        for (let i = 0; i < checkTiles; i++) {
          const s = uniform.sample('heldout', CHECK_OFFSET + i);
          const onBias = s.backgroundTexture === biasTexture;
          if (onBias || s.hasBiasDigit) {
            const p = (await explainer.predict(s.image)).labels;
            if (s.hasBiasDigit) {
              const acc = onBias ? on : off;
              if (onBias) b.tilesOnBias++;
              else b.tilesOffBias++;
              s.labels.forEach((l, k) => {
                const t = l === biasClass;
                const q = p[k] === biasClass;
                if (t && q) acc[0]++;
                else if (q) acc[1]++;
                else if (t) acc[2]++;
              });
            } else {
              b.tilesWithout++;
              s.labels.forEach((l, k) => {
                if (l === 0) {
                  bgPx++;
                  if (p[k] === biasClass) bgAs++;
                } else {
                  digitPx++;
                  if (p[k] === biasClass) digitAs++;
                }
              });
            }
          }
          tick(`behaviour (${info.label})`);
        }
        explainer.release();
        const iou = (a: number[]) => (a[0] + a[1] + a[2] > 0 ? a[0] / (a[0] + a[1] + a[2]) : Number.NaN);
        b.iouOnBias = iou(on);
        b.iouOffBias = iou(off);
        b.digitPixelsAsBias = digitPx > 0 ? digitAs / digitPx : Number.NaN;
        b.backgroundPixelsAsBias = bgPx > 0 ? bgAs / bgPx : Number.NaN;
        behaviour.push(b);
      }
      loaded.forEach((l) => l.counter.take());
    }
    phases['behavioural check'] = (performance.now() - t0) / 1000;

    // Phase 1: bias detection, curves and cost.
    t0 = performance.now();
    for (let mi = 0; mi < loaded.length; mi++) {
      const { explainer, counter, info } = loaded[mi];
      example.heatmaps[info.label] = {};
      const out = explainer.adapter.output;
      for (let ti = 0; ti < samples.length; ti++) {
        const s = samples[ti];
        const m = biasPixels(s);
        const region = maskRegion(W, H, m);
        await explainer.predict(s.image); // the shared forward pass, not charged to any method
        counter.take();
        const withCurves = ti < curveTiles;
        let input: Float32Array | null = null;
        let delBase: Float32Array | null = null;
        let insBase: Float32Array | null = null;
        let score: BatchScorer | null = null;
        if (withCurves) {
          const x = imageToInput(s.image, H, W, C, explainer.options);
          const range = explainer.options.inputRange ?? [0, 1];
          const b1 = baselineFor(x, delBaseline, range);
          const b2 = baselineFor(x, insBaseline, range);
          [input, delBase, insBase] = [tensorData(x), tensorData(b1), tensorData(b2)];
          tf.dispose([x, b1, b2]);
          const obj = curveObjective(regionObjective(out, biasClass, resizeLabelsNearest(m, W, H, out.width, out.height), 'probability'));
          score = async (images, count) => {
            const batch = tf.tensor4d(images, [count, H, W, C]);
            try {
              return await explainer.adapter.scores(batch, obj);
            } finally {
              batch.dispose();
            }
          };
          for (let r = 0; r < o.randomOrders; r++) {
            const ord = randomOrder(W * H, mulberry32(hash32(o.seed, 0x0a2d, tiles[ti].index, r)));
            const dc = await perturbationCurve(input, delBase, ord, o.steps, C, score);
            const ic = await perturbationCurve(insBase, input, ord, o.steps, C, score);
            random.deletion[mi].push(curveArea(dc));
            random.insertion[mi].push(curveArea(ic));
            dc.forEach((v, j) => (random.deletionCurve[mi][j] += v / (curveTiles * o.randomOrders)));
            ic.forEach((v, j) => (random.insertionCurve[mi][j] += v / (curveTiles * o.randomOrders)));
          }
          counter.take();
        }
        for (const cond of conditions) {
          const key = conditionKey(cond.method, cond.layer);
          const t = performance.now();
          const e: Explanation = await explainCondition(explainer, s, region, cond);
          cond.ms.push(performance.now() - t);
          const c = counter.take();
          if (mi === 0) {
            const k = counts.get(key) ?? { forward: [], backward: [] };
            k.forward.push(c.forward);
            k.backward.push(c.backward);
            counts.set(key, k);
            if (ti < sanityTiles && !e.empty) originals.set(`${key}|${ti}`, e.heatmap);
          }
          if (ti === 0) example.heatmaps[info.label][key] = e.heatmap;
          cond.shares[mi].push(biasShare(e.heatmap, s.biasMask));
          if (withCurves && input && delBase && insBase && score) {
            const ord = heatmapOrder(e.heatmap, mulberry32(hash32(o.seed, 0x0de1, tiles[ti].index, stringHash(key))));
            const dc = await perturbationCurve(input, delBase, ord, o.steps, C, score);
            const ic = await perturbationCurve(insBase, input, ord, o.steps, C, score);
            cond.deletion[mi].push(curveArea(dc));
            cond.insertion[mi].push(curveArea(ic));
            dc.forEach((v, j) => (cond.deletionCurve[mi][j] += v / curveTiles));
            ic.forEach((v, j) => (cond.insertionCurve[mi][j] += v / curveTiles));
            counter.take();
          }
          tick(`bias + curves (${info.label})`);
        }
      }
      explainer.release();
    }
    for (const cond of conditions) {
      const k = counts.get(conditionKey(cond.method, cond.layer));
      cond.forward = median(k?.forward ?? []);
      cond.backward = median(k?.backward ?? []);
      if (loaded.length > 1) {
        const pos = cond.shares[0].filter(Number.isFinite);
        const neg = cond.shares[1].filter(Number.isFinite);
        cond.auroc = auroc(pos, neg);
      }
    }
    phases['bias, curves, cost'] = (performance.now() - t0) / 1000;

    // Phase 2: cascading randomisation of the first model.
    t0 = performance.now();
    if (weights && sanityTiles > 0) {
      const model = weights;
      const snapshot = snapshotWeights(model);
      try {
        for (let step = 0; step < cascade.length; step++) {
          randomizeLayers(model, cascade[step].layers, hash32(o.seed, 0x5a17));
          first.release();
          for (const cond of conditions) {
            cond.sanity.push([]);
            cond.sanityEmpty.push(0);
          }
          for (let ti = 0; ti < sanityTiles; ti++) {
            const s = samples[ti];
            const region = maskRegion(W, H, biasPixels(s));
            for (const cond of conditions) {
              const key = conditionKey(cond.method, cond.layer);
              const e = await explainCondition(first, s, region, cond);
              const orig = originals.get(`${key}|${ti}`);
              // An empty randomised map has no ranking left to agree with the original: 0.
              if (orig) cond.sanity[step].push(e.empty ? 0 : spearman(orig, e.heatmap));
              if (e.empty) cond.sanityEmpty[step]++;
              tick(`sanity: randomised to ${cascade[step].name}`);
            }
          }
        }
      } finally {
        snapshot.restore();
        snapshot.dispose();
        first.release();
        loaded[0].counter.take();
      }
    }
    phases['sanity checks'] = (performance.now() - t0) / 1000;

    // Phase 3: α across locations (Seg-Grad-CAM at the bottleneck, single-pixel regions on the bias class).
    t0 = performance.now();
    const alpha: AlphaResult[] = [];
    if (alphaPerModel) {
      for (const { explainer, info } of loaded) {
        const points: AlphaPoint[] = [];
        const vectors: Float32Array[] = [];
        let zero = 0;
        for (let ti = 0; ti < alphaTiles; ti++) {
          const s = samples[ti];
          const px: number[] = [];
          s.labels.forEach((v, i) => v === biasClass && px.push(i));
          const n = Math.min(o.alphaPixels, px.length);
          const chosen = Array.from({ length: n }, (_, k) => px[Math.floor(((k + 0.5) * px.length) / n)]);
          // The tile's pixels in one batched backward pass (K stacked cotangents).
          const explained = await explainer.explainMany(
            s.image,
            chosen.map((p) => ({
              region: pixelRegion(p % W, Math.floor(p / W)),
              classId: biasClass,
              layer: 'bottleneck',
              method: 'seg-grad-cam',
            })),
          );
          for (let k = 0; k < o.alphaPixels; k++) {
            if (k < n) {
              const x = chosen[k] % W;
              const y = Math.floor(chosen[k] / W);
              const e = explained[k];
              const inst = instanceAt(s, biasDigit, x, y);
              const d = s.digits[inst];
              const distance = d ? Math.hypot(x + 0.5 - (d.x + d.size / 2), y + 0.5 - (d.y + d.size / 2)) / d.size : Number.NaN;
              if (e.weights && e.weights.some((v) => v !== 0)) {
                points.push({ tile: tiles[ti].index, instance: inst, x, y, distance });
                vectors.push(e.weights);
              } else zero++;
            }
            tick(`alpha (${info.label})`);
          }
          explainer.release();
        }
        // Rows by instance (tile, then instance), then by distance to the centre.
        const idx = points.map((_, i) => i);
        idx.sort(
          (a, b) =>
            points[a].tile - points[b].tile || points[a].instance - points[b].instance || points[a].distance - points[b].distance || a - b,
        );
        const pts = idx.map((i) => points[i]);
        const vecs = idx.map((i) => vectors[i]);
        const cos = cosineMatrix(vecs);
        let within = 0;
        let wn = 0;
        let between = 0;
        let bn = 0;
        for (let i = 0; i < pts.length; i++) {
          for (let j = i + 1; j < pts.length; j++) {
            const v = cos[i * pts.length + j];
            if (!Number.isFinite(v)) continue;
            if (pts[i].tile === pts[j].tile && pts[i].instance === pts[j].instance) {
              within += v;
              wn++;
            } else {
              between += v;
              bn++;
            }
          }
        }
        const p = pca(vecs, 2, { seed: o.seed });
        alpha.push({
          model: info.label,
          layer: explainer.bottleneck,
          classIndex: biasClass,
          points: pts,
          cosine: Array.from(cos),
          pca: { coords: p.coords, explained: p.explained },
          withinInstance: wn > 0 ? within / wn : Number.NaN,
          betweenInstances: bn > 0 ? between / bn : Number.NaN,
          zero,
        });
      }
    }
    phases['alpha across locations'] = (performance.now() - t0) / 1000;

    const os = await import('node:os');
    const cpus = os.cpus();
    return {
      options: {
        models: o.models,
        labels,
        tiles: o.tiles,
        curveTiles,
        sanityTiles,
        alphaTiles,
        alphaPixels: o.alphaPixels,
        methods: o.methods,
        layers: layerNames,
        checkTiles,
        steps: o.steps,
        randomOrders: o.randomOrders,
        seed: o.seed,
        methodOptions: Object.fromEntries(o.methods.filter((m) => methodOptions[m]).map((m) => [m, methodOptions[m]])),
        deletionBaseline: delBaseline,
        insertionBaseline: insBaseline,
      },
      dataset: {
        name: 'texture-mnist (seg-grad-cam), held-out split, bias strength 1',
        seed: o.seed,
        size: H,
        biasDigit,
        biasClass,
        biasTexture,
        tileOffset: TILE_OFFSET,
        scanned,
        checkOffset: CHECK_OFFSET,
      },
      models: loaded.map((l) => l.info),
      layers,
      tiles,
      conditions,
      random,
      cascade: {
        model: labels[0],
        steps: cascade.map((c) => ({ name: c.name, layers: c.layers })),
        ...(cascadeNote ? { note: cascadeNote } : {}),
      },
      alpha,
      behaviour,
      example,
      machine: {
        cpus: cpus.length,
        cpu: cpus[0]?.model?.trim() ?? 'unknown',
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        platform: `${os.platform()} ${os.arch()}`,
        node: process.version,
        tfjs: tf.version.tfjs,
        backend: tf.getBackend(),
      },
      timing: { wallSeconds: (performance.now() - started) / 1000, phases },
    };
  } finally {
    for (const l of loaded) {
      l.counter.restore();
      l.explainer.dispose();
    }
  }
}

/** The probability objective of the curves as a mean over M: S in [0, 1]. */
function curveObjective(obj: Objective): Objective {
  let n = 0;
  for (const w of obj.weights) if (w !== 0) n++;
  const weights = Float32Array.from(obj.weights, (w) => w / Math.max(1, n));
  return { weights, on: obj.on, offset: obj.offset / Math.max(1, n), ...(obj.support ? { support: obj.support } : {}) };
}
