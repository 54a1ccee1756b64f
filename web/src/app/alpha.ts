/** α of two answers: pin A and B, their cosine similarity and the bar chart. */
import type { Region } from '../../../src/region/region.js';
import { type Pinned, cosine, drawAlphaChart } from '../ui/compare.js';
import { el } from './elements.js';
import { type Answer, className, explainsInput, state } from './state.js';
import { showError } from './status.js';

/** A region in a few words. */
export function regionText(r: Region): string {
  switch (r.kind) {
    case 'pixel':
    case 'object':
      return `${r.kind} ${r.x},${r.y}`;
    case 'box':
      return `box ${r.x0},${r.y0}–${r.x1},${r.y1}`;
    case 'pixels':
      return `${r.points.length} pixels`;
    default:
      return r.kind;
  }
}

/** An answer in a few words, for the α chart. */
export const describe = (e: Answer): string =>
  `${regionText(e.region)}, class ${e.classIndex} (${className(e.classIndex)}), ${e.layer.name}`;

export function pin(which: 'A' | 'B'): void {
  const e = state.explanation;
  if (!e || !e.weights) {
    showError(new Error(e ? `${e.method} has no channel weights α: choose a Grad-CAM-style method` : 'ask a question first'));
    return;
  }
  const p: Pinned = { weights: e.weights.slice(), label: describe(e), layer: e.layer.name };
  if (which === 'A') state.pinA = p;
  else state.pinB = p;
  renderAlpha();
}

/** The pin buttons work only for an answer with channel weights α; otherwise they say why not. */
export function syncPins(): void {
  const e = state.explanation;
  const why = !e
    ? 'ask a question first'
    : !e.weights
      ? explainsInput(e.method)
        ? `${e.method} explains the input: it has no channel weights α`
        : `${e.method} has no channel weights α: choose a Grad-CAM-style method`
      : null;
  for (const b of [el.pinA, el.pinB]) {
    b.disabled = why !== null;
    b.title =
      why ?? (b === el.pinA ? "Keep the current answer's α as A" : "Keep the current answer's α as B (else B is the current answer)");
  }
}

export function renderAlpha(): void {
  const a = state.pinA;
  const e = state.explanation;
  const b = state.pinB ?? (e?.weights ? { weights: e.weights, label: `${describe(e)} (current)`, layer: e.layer.name } : null);
  if (!a || !b) {
    el.alphaChart.hidden = true;
    el.alphaText.textContent = a
      ? 'A is pinned: now ask about another region at the same layer.'
      : 'Pin one answer as A, then ask another question at the same layer.';
    delete el.alphaText.dataset.cosine;
    return;
  }
  if (a.weights.length !== b.weights.length) {
    el.alphaChart.hidden = true;
    el.alphaText.textContent = `A (${a.layer}, ${a.weights.length} channels) and B (${b.layer}, ${b.weights.length} channels) are at different layers: ask B at ${a.layer}.`;
    delete el.alphaText.dataset.cosine;
    return;
  }
  const cos = cosine(a.weights, b.weights);
  el.alphaText.textContent = `cosine similarity of α_A and α_B: ${cos.toFixed(3)} (${a.weights.length} channels at ${a.layer})`;
  el.alphaText.dataset.cosine = String(cos);
  el.alphaChart.hidden = false;
  drawAlphaChart(el.alphaChart, a, b);
}
