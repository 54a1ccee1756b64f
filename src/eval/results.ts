/** The options and results of an evaluation run (src/eval/run.ts), as written to results.json. */
import type { RgbaImage } from '../image.js';
import type { Baseline } from '../methods/baseline.js';
import type { MethodOptions } from '../methods/index.js';

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
