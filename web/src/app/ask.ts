/** Questions to the worker: a region (and class) at the current layer and method, and the answer shown. */
import { type Region, toOutputCell } from '../../../src/region/region.js';
import type { ExplainParams, ExplanationMsg, Progress } from '../protocol.js';
import { renderAlpha, syncPins } from './alpha.js';
import { call } from './backend.js';
import { el } from './elements.js';
import { hook } from './hook.js';
import { clearGrid, markGridCurrent, questionKey } from './layer-grid.js';
import { updateUrl } from './share.js';
import { type Answer, className, engine, layer, state } from './state.js';
import { clearError, showError } from './status.js';
import { drawMarks, renderOverlay } from './view.js';
import { syncMethodUse } from './model.js';

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
  const contrast = el.contrastSelect.value;
  return {
    region,
    classId,
    method: el.methodSelect.value,
    score: el.scoreSelect.value as ExplainParams['score'],
    ...(el.negativeToggle.checked ? { negative: true } : {}),
    ...(contrast !== 'none' && contrast !== '' ? { contrastClass: Number(contrast) } : {}),
    ...(el.normalizeSelect.value === 'minmax' ? { normalize: 'minmax' as const } : {}),
  };
}

export async function ask(region: Region, classOverride?: number): Promise<void> {
  if (!state.image || !state.info || !state.prediction) return;
  clearError();
  state.region = region;
  drawMarks();
  const seq = ++askSeq;
  const started = performance.now();
  setBusy(true);
  try {
    const reply = await call(
      'explaining',
      { type: 'explain', params: { ...question(region, classOverride ?? state.classChoice ?? undefined), layer: layer() } },
      'explain',
      { onProgress: (p) => seq === askSeq && showProgress(p) },
    );
    if (seq !== askSeq) return;
    if (!reply) {
      // Cancelled: the shown answer stays, with the controls that made it.
      hook.cancelled++;
      restoreShown();
      el.timing.textContent = 'cancelled: the heatmap is the previous answer';
      return;
    }
    showExplanation({ ...reply.explanation, region });
    const wallMs = performance.now() - started;
    hook.timings.push({ ms: reply.explanation.ms, wallMs, cached: reply.explanation.cached, layer: reply.explanation.layer.name });
    el.timing.textContent = timingText(reply.explanation, wallMs);
    hook.answers++;
  } catch (err) {
    if (seq === askSeq) {
      showError(err);
      restoreShown();
    }
  } finally {
    if (seq === askSeq) setBusy(false);
  }
}

/** What ran for an answer, truthfully: its forward and backward passes (the image's cached forward pass apart). */
function timingText(e: ExplanationMsg, wallMs: number): string {
  const n = (k: number, what: string) => `${k} ${what} pass${k === 1 ? '' : 'es'}`;
  const ran = `${n(e.passes.forward, 'forward')} and ${n(e.passes.backward, 'backward')}`;
  const cached = e.cached ? ' after the cached forward pass of the image' : '';
  return `answer in ${Math.round(e.ms)} ms on ${engine()}: ${ran}${cached} · ${Math.round(wallMs)} ms from the click to the heatmap`;
}

/** After an error or a cancel: the region and the method dropdown go back to the answer on the screen. */
function restoreShown(): void {
  const e = state.explanation;
  state.region = e?.region ?? null;
  if (e && [...el.methodSelect.options].some((o) => o.value === e.method)) {
    el.methodSelect.value = e.method;
    syncMethodUse();
  }
  drawMarks();
}

/** The heatmap dimmed with "computing…" and the progress row (with Cancel) while a question runs. */
function setBusy(busy: boolean): void {
  el.overlayPanel.classList.toggle('stale', busy && state.explanation !== null);
  el.overlayBusy.hidden = !busy;
  el.askProgressRow.hidden = !busy;
  if (busy) showProgress({ phase: 'explaining' });
}

function showProgress(p: Progress): void {
  const passes = p.passes;
  if (p.fraction !== undefined) el.askProgress.value = p.fraction;
  else el.askProgress.removeAttribute('value');
  el.askProgressText.textContent =
    passes && passes.expected !== null
      ? `${Math.min(passes.expected, Math.max(passes.forward, passes.backward))} of ${passes.expected} passes (${passes.forward} forward, ${passes.backward} backward)`
      : p.phase;
}

/** Asks an answer's region again (after a change of layer, method, score or class); a class region keeps its class, or takes `cls`. */
export const askAgain = (e: Answer, cls = e.classIndex) => ask(e.region, e.region.kind === 'class' ? cls : undefined);

export function showExplanation(e: Answer): void {
  if (state.gridQuestion !== null && state.gridQuestion !== questionKey(e)) clearGrid();
  state.explanation = e;
  hook.lastExplanation = e;
  hook.lastHeatmap = e.heatmap;
  hook.lastRegion = e.region;
  renderOverlay();
  drawMarks();
  const px = e.regionMask.reduce((a, b) => a + b, 0);
  const name = className(e.classIndex);
  const auto =
    e.region.kind === 'class' ? '' : state.classChoice === null ? ' (the prediction in M)' : ' (the class fixed for every click)';
  const contrast = e.contrastClassIndex === undefined ? '' : ` rather than ${e.contrastClassIndex} · ${className(e.contrastClassIndex)}`;
  const how = `${e.negative ? ' (negative map: what speaks against it)' : ''}${e.normalize === 'minmax' ? ', min–max scaled' : ''}`;
  el.answer.textContent =
    `class ${e.classIndex} · ${name}${auto}${contrast}, |M| = ${px} output pixels, layer ${e.layer.name} [${e.layer.outputShape.slice(1).join('×')}], ` +
    `${e.method}${how}, S = ${e.scoreValue.toFixed(3)}${e.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}`;
  markGridCurrent();
  syncPins();
  renderAlpha();
  updateUrl();
}
