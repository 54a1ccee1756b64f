import type { GradientPrime, Objective, OutputInfo } from '../engine/contract.js';
import { SegGradCamError } from '../errors.js';
import type { RgbaImage } from '../image.js';
import { contrastObjective } from '../region/contrast.js';
import { classCount, regionObjective, type ScoreKind } from '../region/objective.js';
import { regionToMask, toOutputCell } from '../region/region.js';
import type { ExplainRequest, Prediction } from './types.js';

/** The class, region and objective a request explains. */
export interface Target {
  classIndex: number;
  regionMask: Uint8Array;
  score: ScoreKind;
  objective: Objective;
  /** With a contrast class: c′ and β (the objective is then S_c − β S_{c′}). */
  contrastClassIndex?: number;
  contrastWeight?: number;
}

/** The image and output grids, and the predicted labels on the output grid. */
export interface ClassContext {
  imageWidth: number;
  imageHeight: number;
  outWidth: number;
  outHeight: number;
  labels: Int32Array;
}

/** The class, the region M and the objective S of a request on the image's prediction. */
export function targetOf(
  output: OutputInfo,
  classNames: string[] | undefined,
  request: ExplainRequest,
  image: RgbaImage,
  prediction: Prediction,
): Target {
  const grid: ClassContext = {
    imageWidth: image.width,
    imageHeight: image.height,
    outWidth: output.width,
    outHeight: output.height,
    labels: prediction.labels,
  };
  const classIndex = resolveClass(output, classNames, request, grid);
  const regionMask = regionToMask(request.region, { ...grid, classIndex, className: classNames?.[classIndex] });
  const score = request.score ?? 'logits';
  const objective = regionObjective(output, classIndex, regionMask, score);
  if (request.contrastClass === undefined) {
    if (request.contrastWeight !== undefined) throw new SegGradCamError('a contrast weight needs a contrast class', 'usage');
    return { classIndex, regionMask, score, objective };
  }
  // c′ is named as c is (an index or a name); β defaults to 1.
  const contrastClassIndex = resolveClass(output, classNames, { ...request, classId: request.contrastClass }, grid);
  const contrastWeight = request.contrastWeight ?? 1;
  return {
    classIndex,
    regionMask,
    score,
    objective: contrastObjective(objective, output, contrastClassIndex, contrastWeight),
    contrastClassIndex,
    contrastWeight,
  };
}

/**
 * The target of a request whose region and class do not depend on the prediction (an explicit
 * class; a pixel, pixels, box, mask or the whole image), known before any forward pass; else undefined.
 */
export function targetBeforePrediction(
  output: OutputInfo,
  classNames: string[] | undefined,
  request: ExplainRequest,
  image: RgbaImage,
): Target | undefined {
  if (request.classId === undefined || request.region.kind === 'class' || request.region.kind === 'object') return undefined;
  // The labels are not read for these region forms and an explicit class.
  const blank = { labels: new Int32Array(output.height * output.width), width: output.width, height: output.height };
  return targetOf(output, classNames, request, image, blank);
}

/**
 * What a request's objective takes from the prediction, when only the class region (class given)
 * or only the class (a pixel, pixels, box, mask or the whole image, no class given) does, and
 * the score is the logits with no contrast class: an engine may then find it inside its forward
 * run (GradientPrime.seed); else undefined.
 */
export function predictionSeed(
  output: OutputInfo,
  classNames: string[] | undefined,
  request: ExplainRequest,
  image: RgbaImage,
): GradientPrime['seed'] {
  if (request.contrastClass !== undefined || (request.score ?? 'logits') !== 'logits' || output.kind !== 'map') return undefined;
  const blank: ClassContext = {
    imageWidth: image.width,
    imageHeight: image.height,
    outWidth: output.width,
    outHeight: output.height,
    labels: new Int32Array(output.width * output.height),
  };
  const kind = request.region.kind;
  if (kind === 'class')
    return request.classId === undefined ? undefined : { classRegion: resolveClass(output, classNames, request, blank) };
  if (request.classId !== undefined || kind === 'object') return undefined;
  // M does not depend on the class or the labels for these forms.
  return { region: regionToMask(request.region, { ...blank, classIndex: 0 }) };
}

/** A class index from an index or a name; default: the prediction at the region. */
export function resolveClass(output: OutputInfo, classNames: string[] | undefined, request: ExplainRequest, ctx: ClassContext): number {
  const n = classCount(output);
  const id = request.classId;
  if (typeof id === 'number' || (typeof id === 'string' && /^\d+$/.test(id))) {
    const c = Number(id);
    if (c < 0 || c >= n) throw new SegGradCamError(`class ${c} is out of range: the model has classes 0..${n - 1}`, 'class');
    return c;
  }
  if (typeof id === 'string') {
    const c = classNames ? classNames.indexOf(id) : -1;
    if (c < 0) {
      const known = classNames ? `known classes: ${classNames.join(', ')}` : 'no class names are known (give a labels file or an index)';
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
