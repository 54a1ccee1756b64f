/** Questions to the worker: a region (and class) at the current layer and method, and the answer shown. */
import { type Region, toOutputCell } from '../../../src/region/region.js';
import type { ExplainParams } from '../protocol.js';
import { renderAlpha } from './alpha.js';
import { call } from './backend.js';
import { el } from './elements.js';
import { hook } from './hook.js';
import { markGridCurrent } from './layer-grid.js';
import { updateUrl } from './share.js';
import { type Answer, className, engine, layer, state } from './state.js';
import { clearError, showError } from './status.js';
import { drawMarks, renderOverlay } from './view.js';

let askSeq = 0;

/** The class under an image pixel in the current prediction. */
export function classAt(x: number, y: number): number | null {
  const p = state.prediction;
  const img = state.image;
  if (!p || !img) return null;
  const [ox, oy] = toOutputCell(x, y, { imageWidth: img.width, imageHeight: img.height, outWidth: p.width, outHeight: p.height });
  return p.labels[oy * p.width + ox];
}

/** The classes of a prediction with their pixel counts, most frequent first. */
export function classCounts(labels: Int32Array): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (const c of labels) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

/** The class for the class-region form when it says "auto": the last answer's, else the most common non-background class. */
export function defaultRegionClass(): number {
  if (state.explanation) return state.explanation.classIndex;
  if (!state.prediction) return 0;
  const sorted = classCounts(state.prediction.labels);
  return (sorted.find(([c]) => c !== 0) ?? sorted[0])[0];
}

/** The question's parts that the controls set (all but the layer). */
export function question(region: Region, classId: number | undefined): Omit<ExplainParams, 'layer'> {
  return { region, classId, method: el.methodSelect.value, score: el.scoreSelect.value as ExplainParams['score'] };
}

export async function ask(region: Region, classOverride?: number): Promise<void> {
  if (!state.image || !state.info || !state.prediction) return;
  clearError();
  state.region = region;
  drawMarks();
  const seq = ++askSeq;
  const started = performance.now();
  try {
    const reply = await call(
      'explaining',
      { type: 'explain', params: { ...question(region, classOverride ?? state.classChoice ?? undefined), layer: layer() } },
      'explain',
    );
    if (!reply || seq !== askSeq) return;
    showExplanation({ ...reply.explanation, region });
    const wallMs = performance.now() - started;
    hook.timings.push({ ms: reply.explanation.ms, wallMs, cached: reply.explanation.cached, layer: reply.explanation.layer.name });
    el.timing.textContent =
      `answer in ${Math.round(reply.explanation.ms)} ms on ${engine()}` +
      (reply.explanation.cached ? ' (backward only: the forward pass was cached)' : ' (forward + backward)') +
      ` · ${Math.round(wallMs)} ms from the click to the heatmap`;
    hook.answers++;
  } catch (err) {
    if (seq === askSeq) {
      showError(err);
      state.region = state.explanation?.region ?? null;
      drawMarks();
    }
  }
}

/** Asks an answer's region again (after a change of layer, method, score or class); a class region keeps its class, or takes `cls`. */
export const askAgain = (e: Answer, cls = e.classIndex) => ask(e.region, e.region.kind === 'class' ? cls : undefined);

export function showExplanation(e: Answer): void {
  state.explanation = e;
  hook.lastExplanation = e;
  hook.lastHeatmap = e.heatmap;
  hook.lastRegion = e.region;
  renderOverlay();
  drawMarks();
  const px = e.regionMask.reduce((a, b) => a + b, 0);
  const name = className(e.classIndex);
  const auto = state.classChoice === null && e.region.kind !== 'class' ? ' (the prediction in M)' : '';
  el.answer.textContent =
    `class ${e.classIndex} · ${name}${auto}, |M| = ${px} output pixels, layer ${e.layer.name} [${e.layer.outputShape.slice(1).join('×')}], ` +
    `${e.method}, S = ${e.scoreValue.toFixed(3)}${e.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}`;
  markGridCurrent();
  renderAlpha();
  updateUrl();
}
