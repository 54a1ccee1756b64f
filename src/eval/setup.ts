/**
 * What every protocol of the evaluation shares: the default methods, the models loaded with their
 * training record, the held-out tiles, the layers and the conditions (method × layer), and the
 * context the protocols run in (src/eval/protocol/).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createTextureMnist } from '../data/assets-node.js';
import { isTextureName, type TextureName } from '../data/textures.js';
import type { TextureMnistSample } from '../data/texture-mnist.js';
import { SegGradCamError } from '../errors.js';
import { Explainer, type Explanation } from '../explain.js';
import { classNamesFromMetadata } from '../io/labels.js';
import type { Baseline } from '../methods/baseline.js';
import { createMethod, isModelMethod, methodNames, type Method, type MethodOptions } from '../methods/index.js';
import type { LayerInfo } from '../engine/contract.js';
import { readModelArtifacts } from '../engine/tfjs/load-node.js';
import { adapterFromArtifacts } from '../engine/tfjs/load.js';
import type { Region } from '../region/region.js';
import { areaShare } from './bias.js';
import { instrumentAdapter, type Instrumented } from './cost.js';
import type { ConditionResult, EvaluationOptions, LayerEntry, ModelInfo, TileInfo } from './results.js';

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

export interface Loaded {
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

/** Checks the options that need no model; a 'usage' error names the first bad one. */
export function validateOptions(o: EvaluationOptions): void {
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
}

/** Loads the models into `loaded` (pushed one by one, so that the caller disposes what was loaded when one fails). */
export async function loadModels(o: EvaluationOptions, labels: string[], loaded: Loaded[]): Promise<void> {
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
}

/** The common input size of the models (square; else a 'model' error), after checking that they have class outputs. */
export function commonInput(loaded: Loaded[]): { H: number; W: number; C: number } {
  const first = loaded[0].explainer;
  const { height: H, width: W, channels: C } = first.adapter.input;
  if (H !== W) throw new SegGradCamError(`the evaluation needs a square model input, got ${H}x${W}`, 'model');
  for (const l of loaded) {
    const inp = l.explainer.adapter.input;
    if (inp.height !== H || inp.width !== W || inp.channels !== C)
      throw new SegGradCamError('the models must take the same input size', 'model');
    if (l.explainer.classCount < 2) throw new SegGradCamError('the models must have class outputs', 'model');
  }
  return { H, W, C };
}

/** The bias digit, its class and texture, from the first model's dataset recipe (defaults: digit 3, brick). */
export function biasRecipe(loaded: Loaded[]): { biasDigit: number; biasClass: number; biasTexture: TextureName } {
  const first = loaded[0].explainer;
  const recipe = loaded[0].dataset ?? {};
  const biasDigit = typeof recipe.biasDigit === 'number' ? recipe.biasDigit : 3;
  const biasClass = typeof recipe.biasClass === 'number' ? recipe.biasClass : biasDigit + 1;
  const biasTexture = typeof recipe.biasTexture === 'string' && isTextureName(recipe.biasTexture) ? recipe.biasTexture : 'brick';
  if (biasClass >= first.classCount)
    throw new SegGradCamError(`the bias class ${biasClass} is out of range for a model with ${first.classCount} classes`, 'model');
  return { biasDigit, biasClass, biasTexture };
}

/** The held-out tiles, with the bias digit on the bias background (biasStrength 1 for every model: identical inputs). */
export async function selectTiles(
  o: EvaluationOptions,
  H: number,
  W: number,
  { biasDigit, biasClass, biasTexture }: { biasDigit: number; biasClass: number; biasTexture: TextureName },
): Promise<{ samples: TextureMnistSample[]; tiles: TileInfo[]; scanned: number }> {
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
  return { samples, tiles, scanned };
}

/** The layers of the CAM methods (resolved on every model) with their role. */
export function layerEntries(o: EvaluationOptions, loaded: Loaded[], H: number): { layerNames: string[]; layers: LayerEntry[] } {
  const first = loaded[0].explainer;
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
  return { layerNames, layers };
}

/** One method object per name (methods keep no state between explanations) and the conditions: each method at each layer, or at the input. */
export function conditionsFor(
  o: EvaluationOptions,
  methodOptions: Record<string, MethodOptions>,
  models: number,
  layerNames: string[],
  layers: LayerEntry[],
): { methods: Map<string, Method>; conditions: ConditionResult[] } {
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
        shares: Array.from({ length: models }, () => []),
        auroc: Number.NaN,
        deletion: Array.from({ length: models }, () => []),
        insertion: Array.from({ length: models }, () => []),
        deletionCurve: Array.from({ length: models }, () => new Array<number>(o.steps + 1).fill(0)),
        insertionCurve: Array.from({ length: models }, () => new Array<number>(o.steps + 1).fill(0)),
        forward: Number.NaN,
        backward: Number.NaN,
        ms: [],
        sanity: [],
        sanityEmpty: [],
      });
    }
  }
  return { methods, conditions };
}

/** What the protocols run in: the options, the models, the tiles, the conditions and the progress callback. */
export interface EvalContext {
  o: EvaluationOptions;
  loaded: Loaded[];
  first: Explainer;
  H: number;
  W: number;
  C: number;
  biasDigit: number;
  biasClass: number;
  biasTexture: TextureName;
  samples: TextureMnistSample[];
  tiles: TileInfo[];
  conditions: ConditionResult[];
  methods: Map<string, Method>;
  curveTiles: number;
  sanityTiles: number;
  alphaTiles: number;
  checkTiles: number;
  delBaseline: Baseline;
  insBaseline: Baseline;
  /** Reports one unit of work of a phase. */
  tick: (phase: string) => void;
  /** M: the bias digit's pixels of a tile. */
  biasPixels: (s: TextureMnistSample) => Uint8Array;
  /** A condition's explanation of a tile (M = the bias digit, class = the bias class). */
  explainCondition: (explainer: Explainer, s: TextureMnistSample, region: Region, cond: ConditionResult) => Promise<Explanation>;
}
