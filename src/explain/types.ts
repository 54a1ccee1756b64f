import type { LayerInfo } from '../engine/contract.js';
import type { Method, MethodOptions } from '../methods/index.js';
import type { AugmentOptions } from '../postprocess/augment.js';
import type { Normalization } from '../postprocess/heatmap.js';
import type { InputOptions } from '../preprocess.js';
import type { ScoreKind } from '../region/objective.js';
import type { Region } from '../region/region.js';

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
  /** The negative map (copied into methodOptions.negative): ReLU(−Σ_k α_k A^k), what speaks against c in M. */
  negative?: boolean;
  /** A contrast class c′ (index or name): explain S = Σ_M (y^c − β y^{c′}), what makes M c rather than c′. */
  contrastClass?: number | string;
  /** β of the contrast (default 1); only with contrastClass. */
  contrastWeight?: number;
  /** How the heatmap is scaled to [0, 1]: 'max' (default) divides by the maximum, 'minmax' maps [min, max] to [0, 1]. */
  normalize?: Normalization;
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
  /** True for a negative map (ReLU(−Σ_k α_k A^k)). */
  negative?: boolean;
  /** With contrastClass: c′ (S = Σ_M (y^c − β y^{c′})), its name and β. */
  contrastClassIndex?: number;
  contrastClassName?: string;
  contrastWeight?: number;
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
  /** The normalisation asked for (absent: the default 'max'). */
  normalize?: Normalization;
}
