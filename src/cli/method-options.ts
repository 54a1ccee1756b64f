import type { Command } from 'commander';
import { SegGradCamError } from '../errors.js';
import { parseBaseline } from '../methods/baseline.js';
import { createMethod, type MethodOptions } from '../methods/index.js';
import { parseNormalization, type Normalization } from '../postprocess/heatmap.js';
import { oneOf, parseInteger, parseNumberAtLeast } from './parse.js';

/** The explain command's method flags (each method reads its own) and the negative / contrast / normalize flags. */
export interface MethodFlags {
  samples?: string;
  sigma?: string;
  seed?: string;
  steps?: string;
  baseline?: string;
  maxChannels?: string;
  batchSize?: string;
  iterations?: string;
  maskSize?: string;
  lambda?: string;
  keepRegion?: boolean;
  lrpRule?: string;
  epsilon?: string;
  variant?: string;
  window?: string;
  stride?: string;
  keepProbability?: string;
  kernel?: string;
  gamma?: string;
  sigmas?: string;
  comparisons?: string;
  finerAlpha?: string;
  segmentation?: string;
  segments?: string;
  compactness?: string;
  negative?: boolean;
  contrastClass?: string;
  contrastWeight?: string;
  normalize?: string;
  lrpFirstLayer?: string;
  lrpLow?: string;
  lrpHigh?: string;
}

/** Optional flags: parsed only when given. */
const integerFlag = (text: string | undefined, flag: string, min: number) =>
  text === undefined ? undefined : parseInteger(text, flag, min);
const numberFlag = (text: string | undefined, flag: string) => (text === undefined ? undefined : parseNumberAtLeast(text, flag, 0));

function finiteFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new SegGradCamError(`${flag} expects a number, got '${text}'`, 'usage');
  return v;
}

function positiveFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0)
    throw new SegGradCamError(`${flag} expects a number > 0, got '${text}'`, 'usage');
  return v;
}

function probabilityFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !(v > 0 && v <= 1)) throw new SegGradCamError(`${flag} expects a number in (0, 1], got '${text}'`, 'usage');
  return v;
}

/** Adds the method flags to the explain command. */
export function addMethodOptions(cmd: Command): Command {
  return cmd
    .option('--negative', 'the negative map ReLU(−Σ α A): what speaks against the class in M (gradient CAMs, score-cam, occlusion…)')
    .option('--contrast-class <c>', 'contrastive map: explain S = Σ_M (y^c − β y^c′) for the class c′ (index or name)')
    .option('--contrast-weight <b>', 'β of --contrast-class (1)')
    .option('--normalize <how>', 'heatmap scaling: max (divide by the maximum; the default) or minmax (as pytorch-grad-cam)')
    .option('--samples <n>', 'smoothgrad: noisy samples (25); rise: random masks (1000)')
    .option('--sigma <f>', 'smoothgrad: noise σ as a fraction of the input range (0.15)')
    .option('--seed <n>', 'smoothgrad, rise: random seed (0)')
    .option('--steps <n>', 'integrated-gradients: steps (32)')
    .option('--baseline <b>', 'integrated-gradients, grid-saliency, score-cam, occlusion, rise: black, blurred or a number (black)')
    .option('--max-channels <n>', 'score-cam: channels scored, by mean activation (32; every channel with --variant pytorch-grad-cam)')
    .option('--variant <v>', 'score-cam: increase (default) or pytorch-grad-cam (x ⊙ H_k, softmax over channels)')
    .option(
      '--batch-size <n>',
      'images per model call (score-cam, occlusion, rise, ablation-cam 16; smoothgrad and integrated-gradients 8)',
    )
    .option('--iterations <n>', 'grid-saliency: optimisation steps (100)')
    .option('--mask-size <n>', 'grid-saliency: mask grid n×n (16); rise: mask grid n×n (8)')
    .option('--lambda <x>', 'grid-saliency: weight of the mask size (0.05)')
    .option('--keep-region', 'grid-saliency: keep M itself, the mask chooses context only (Hoyer et al.)')
    .option('--keep-probability <p>', 'rise: probability that a mask cell keeps the image (0.5)')
    .option('--window <n>', 'occlusion: window side in model-input pixels (⌈min(H, W)/8⌉)')
    .option('--stride <n>', 'occlusion: step between windows (the window)')
    .option('--kernel <k>', 'kpca-cam: sigmoid (default), rbf or linear')
    .option('--gamma <x>', 'kpca-cam: kernel γ (1/channels)')
    .option('--sigmas <k>', 'fem: threshold μ + k σ (2)')
    .option('--comparisons <n>', 'finer-cam: classes compared with (3)')
    .option('--finer-alpha <a>', 'finer-cam: weight of the compared classes (1)')
    .option('--segmentation <s>', 'kernel-shap: slic (default) or grid superpixels')
    .option('--segments <n>', 'kernel-shap: about how many segments (50)')
    .option('--compactness <m>', 'kernel-shap: SLIC compactness (10)')
    .option('--lrp-rule <rule>', 'lrp: epsilon or alpha-beta (epsilon)')
    .option('--epsilon <x>', 'lrp: ε of the ε-rule (0.01)')
    .option('--lrp-first-layer <rule>', 'lrp: rule of the layer reading the input: same, z-plus or z-box (same)')
    .option('--lrp-low <x>', 'lrp z-box: lowest input value, model units (the input range)')
    .option('--lrp-high <x>', 'lrp z-box: highest input value, model units (the input range)');
}

/** Method options from the flags that were given (each method reads its own). */
export function methodOptionsFrom(flags: MethodFlags): MethodOptions {
  const o: MethodOptions = {
    samples: integerFlag(flags.samples, '--samples', 1),
    sigma: numberFlag(flags.sigma, '--sigma'),
    seed: integerFlag(flags.seed, '--seed', 0),
    steps: integerFlag(flags.steps, '--steps', 1),
    baseline: flags.baseline === undefined ? undefined : parseBaseline(flags.baseline),
    maxChannels: integerFlag(flags.maxChannels, '--max-channels', 1),
    variant: flags.variant === undefined ? undefined : oneOf(flags.variant, '--variant', ['increase', 'pytorch-grad-cam'] as const),
    batchSize: integerFlag(flags.batchSize, '--batch-size', 1),
    iterations: integerFlag(flags.iterations, '--iterations', 1),
    maskResolution: integerFlag(flags.maskSize, '--mask-size', 1),
    lambda: numberFlag(flags.lambda, '--lambda'),
    keepRegion: flags.keepRegion ? true : undefined,
    keepProbability: probabilityFlag(flags.keepProbability, '--keep-probability'),
    window: integerFlag(flags.window, '--window', 1),
    stride: integerFlag(flags.stride, '--stride', 1),
    kernel: flags.kernel === undefined ? undefined : oneOf(flags.kernel, '--kernel', ['sigmoid', 'rbf', 'linear'] as const),
    gamma: positiveFlag(flags.gamma, '--gamma'),
    sigmas: numberFlag(flags.sigmas, '--sigmas'),
    comparisons: integerFlag(flags.comparisons, '--comparisons', 1),
    finerAlpha: finiteFlag(flags.finerAlpha, '--finer-alpha'),
    segmentation: flags.segmentation === undefined ? undefined : oneOf(flags.segmentation, '--segmentation', ['slic', 'grid'] as const),
    segments: integerFlag(flags.segments, '--segments', 1),
    compactness: numberFlag(flags.compactness, '--compactness'),
    rule: flags.lrpRule === undefined ? undefined : oneOf(flags.lrpRule, '--lrp-rule', ['epsilon', 'alpha-beta'] as const),
    epsilon: numberFlag(flags.epsilon, '--epsilon'),
    negative: flags.negative ? true : undefined,
    firstLayerRule:
      flags.lrpFirstLayer === undefined ? undefined : oneOf(flags.lrpFirstLayer, '--lrp-first-layer', ['same', 'z-plus', 'z-box'] as const),
    low: finiteFlag(flags.lrpLow, '--lrp-low'),
    high: finiteFlag(flags.lrpHigh, '--lrp-high'),
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as MethodOptions;
}

/** The explain request's contrast and normalisation from the flags. */
export function explainOptionsFrom(flags: MethodFlags): {
  contrastClass?: string;
  contrastWeight?: number;
  normalize?: Normalization;
} {
  const contrastWeight = finiteFlag(flags.contrastWeight, '--contrast-weight');
  if (contrastWeight !== undefined && flags.contrastClass === undefined)
    throw new SegGradCamError('--contrast-weight needs --contrast-class', 'usage');
  let normalize: Normalization | undefined;
  try {
    normalize = flags.normalize === undefined ? undefined : parseNormalization(flags.normalize);
  } catch (err) {
    throw err instanceof SegGradCamError ? new SegGradCamError(`--normalize: ${err.message}`, 'usage') : err;
  }
  return { contrastClass: flags.contrastClass, contrastWeight, normalize };
}

/** Checks a method's options before the slow work (an unknown option value or a negative map it lacks: a usage error). */
export function checkMethodOptions(method: string, options: MethodOptions): void {
  createMethod(method, options);
}
