/** The layer grid: the same region and class at every layer. */
import { drawCell, makeCell, resolutionChanges, thumbnailBase } from '../ui/compare.js';
import { askAgain, question, showExplanation } from './ask.js';
import { call } from './backend.js';
import { el } from './elements.js';
import { hook } from './hook.js';
import { encodeRegion } from '../url-state.js';
import { type Answer, colormap, opacity, state } from './state.js';
import { showError } from './status.js';

let gridSeq = 0;

/** What a grid answers: an answer's region, class, method and score (not its layer). */
export const questionKey = (e: Answer): string =>
  [encodeRegion(e.region), e.classIndex, e.method, e.score, e.negative ?? false, e.contrastClassIndex ?? '', e.normalize ?? ''].join('|');

export function clearGrid(): void {
  gridSeq++;
  state.grid = [];
  state.gridQuestion = null;
  el.grid.innerHTML = '';
  el.gridStatus.textContent = '';
  hook.gridDone = 0;
}

export async function runGrid(): Promise<void> {
  const info = state.info;
  const e = state.explanation;
  if (!info || !e || !state.image) {
    showError(new Error('ask a question first (click a pixel): the grid shows that region at every layer'));
    return;
  }
  clearGrid();
  state.gridQuestion = questionKey(e);
  const seq = gridSeq;
  const layers = el.gridFilter.checked ? resolutionChanges(info.layers) : info.layers;
  const thumb = thumbnailBase(state.image);
  const cells = layers.map((layer) => ({ layer, ...makeCell(layer) }));
  for (const c of cells) {
    el.grid.append(c.element);
    c.element.addEventListener('click', () => {
      const done = state.grid.find((g) => g.layer.name === c.layer.name);
      el.layerSelect.value = c.layer.name;
      if (done) {
        state.region = done.explanation.region;
        showExplanation(done.explanation);
      } else void askAgain(e);
    });
    c.element.addEventListener('mousemove', (ev) => {
      const g = state.grid.find((x) => x.layer.name === c.layer.name);
      if (!g) return;
      const r = c.canvas.getBoundingClientRect();
      const ex = g.explanation;
      const x = Math.min(ex.width - 1, Math.floor(((ev.clientX - r.left) / r.width) * ex.width));
      const y = Math.min(ex.height - 1, Math.floor(((ev.clientY - r.top) / r.height) * ex.height));
      if (x < 0 || y < 0) return;
      el.readout.textContent = `${c.layer.name} at (${x}, ${y}): heatmap ${ex.heatmap[y * ex.width + x].toFixed(3)}`;
    });
  }
  el.gridStatus.textContent = `0 of ${layers.length}`;
  try {
    const reply = await call(
      'every layer',
      {
        type: 'explain-layers',
        params: question(e.region, e.classIndex),
        layers: layers.map((l) => l.name),
      },
      'explain-layers',
      {
        onPartial: (r) => {
          if (r.type !== 'layer-result' || seq !== gridSeq) return;
          const c = cells[r.index];
          drawCell(c.canvas, thumb, r.explanation, colormap(), opacity());
          c.element.title = `${c.layer.name}: ${Math.round(r.explanation.ms)} ms${r.explanation.empty ? ' (zero everywhere)' : ''}`;
          state.grid.push({ layer: c.layer, explanation: { ...r.explanation, region: e.region }, element: c.element, canvas: c.canvas });
          hook.gridDone = state.grid.length;
          el.gridStatus.textContent = `${state.grid.length} of ${layers.length}`;
          markGridCurrent();
        },
      },
    );
    if (reply && seq === gridSeq)
      el.gridStatus.textContent = `${layers.length} layers in ${(reply.ms / 1000).toFixed(1)} s · click one to open it`;
  } catch (err) {
    if (seq === gridSeq) showError(err);
  }
}

export function redrawGrid(): void {
  if (!state.image) return;
  const thumb = thumbnailBase(state.image);
  for (const g of state.grid) drawCell(g.canvas, thumb, g.explanation, colormap(), opacity());
}

export function markGridCurrent(): void {
  for (const g of state.grid) g.element.classList.toggle('current', g.layer.name === state.explanation?.layer.name);
}
