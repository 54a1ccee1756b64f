/**
 * Metrics of where a saliency map puts its mass relative to an object and its context (issue 15):
 *
 * - Context bias detection, CBD (Hoyer et al. 2019, "Grid Saliency for Context Explanations of
 *   Semantic Segmentation"): salient context / context = Σ_{i∉M} s_i / |{i ∉ M}| for a map s with
 *   values in [0, 1] (the soft count of salient context pixels over the context's size).
 * - Context bias localisation, CBL (ibid.): biased salient context / salient context =
 *   Σ_{i∈B} s_i / Σ_{i∉M} s_i, B the bias region (part of the context; pixels of B inside M do not
 *   count). With B half of the context, a map that does not localise the bias gives 0.5.
 * - Relevance mass accuracy and relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI"): the share
 *   of the positive relevance inside a ground-truth mask G, and the share of G among the |G|
 *   most relevant pixels.
 *
 * Maps and masks are flat, row-major, of equal length; masks are 1 (in) / 0 (out).
 */
import { SegGradCamError } from '../errors.js';

function sameLength(map: ArrayLike<number>, ...masks: ArrayLike<number>[]): void {
  for (const m of masks)
    if (m.length !== map.length) throw new SegGradCamError(`a mask has ${m.length} pixels, the map ${map.length}`, 'shape');
}

/** Saliency clipped to [0, 1] (Hoyer's maps are masks; a heatmap is normalised before). */
const clip01 = (v: number): number => (v > 1 ? 1 : v > 0 ? v : 0);

/** CBD: the mean saliency over the context (the pixels outside `object`); NaN when there is no context. */
export function contextBiasDetection(saliency: ArrayLike<number>, object: ArrayLike<number>): number {
  sameLength(saliency, object);
  let sum = 0;
  let n = 0;
  for (let i = 0; i < saliency.length; i++) {
    if (object[i]) continue;
    sum += clip01(saliency[i]);
    n++;
  }
  return n > 0 ? sum / n : Number.NaN;
}

/** CBL: the share of the context's saliency that lies on the bias region; NaN when the context has no saliency. */
export function contextBiasLocalisation(saliency: ArrayLike<number>, object: ArrayLike<number>, bias: ArrayLike<number>): number {
  sameLength(saliency, object, bias);
  let context = 0;
  let biased = 0;
  for (let i = 0; i < saliency.length; i++) {
    if (object[i]) continue;
    const s = clip01(saliency[i]);
    context += s;
    if (bias[i]) biased += s;
  }
  return context > 0 ? biased / context : Number.NaN;
}

/**
 * CBD as a matrix over bias digits (rows) × test digits (columns): entry [b][t] = the mean CBD of
 * the maps of models biased towards digit b, explaining digit t. `cells[b][t]` holds those CBDs.
 */
export function cbdMatrix(cells: number[][][]): number[][] {
  return cells.map((row) =>
    row.map((values) => {
      const f = values.filter(Number.isFinite);
      return f.length > 0 ? f.reduce((a, b) => a + b, 0) / f.length : Number.NaN;
    }),
  );
}

/** Relevance mass accuracy: positive relevance inside `truth` over all positive relevance; NaN when there is none. */
export function relevanceMassAccuracy(relevance: ArrayLike<number>, truth: ArrayLike<number>): number {
  sameLength(relevance, truth);
  let inside = 0;
  let total = 0;
  for (let i = 0; i < relevance.length; i++) {
    const r = relevance[i] > 0 ? relevance[i] : 0;
    total += r;
    if (truth[i]) inside += r;
  }
  return total > 0 ? inside / total : Number.NaN;
}

/**
 * Relevance rank accuracy: of the K = |truth| pixels with the highest relevance, the share inside
 * `truth`. Ties at the K-th value are shared out: each tied pixel counts for the fraction of the
 * tied places left (so the result does not depend on pixel order). NaN for an empty mask.
 */
export function relevanceRankAccuracy(relevance: ArrayLike<number>, truth: ArrayLike<number>): number {
  sameLength(relevance, truth);
  let k = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i]) k++;
  if (k === 0) return Number.NaN;
  const order = Array.from({ length: relevance.length }, (_, i) => i).sort((a, b) => relevance[b] - relevance[a]);
  const kth = relevance[order[k - 1]];
  let above = 0;
  let aboveIn = 0;
  let tied = 0;
  let tiedIn = 0;
  for (let i = 0; i < relevance.length; i++) {
    if (relevance[i] > kth) {
      above++;
      if (truth[i]) aboveIn++;
    } else if (relevance[i] === kth) {
      tied++;
      if (truth[i]) tiedIn++;
    }
  }
  const places = k - above;
  return (aboveIn + (tied > 0 ? (tiedIn * places) / tied : 0)) / k;
}
