import { COLORMAPS } from '../../src/render/index.js';
import type { Catalog } from '../bundled.js';
import { decodeImage } from './image-decode.js';
import type { BackendChoice } from './protocol.js';
import { decodeState } from './url-state.js';
import { pin, renderAlpha, syncPins } from './app/alpha.js';
import { ask, askAgain, defaultRegionClass } from './app/ask.js';
import { cancelWork, initBackend } from './app/backend.js';
import { $, el, stages } from './app/elements.js';
import { isImage, openFiles } from './app/files.js';
import { acceptDroppedFiles } from './ui/file-drop.js';
import { hook } from './app/hook.js';
import { ASK_PROMPT, fileImage, imageFromKey, openImage, renderColorbar } from './app/image.js';
import { clearGrid, redrawGrid, runGrid } from './app/layer-grid.js';
import {
  applyLabelsFile,
  catalogEntry,
  fillModelSelect,
  modelFromKey,
  openModelAndImage,
  switchBackend,
  syncClassChip,
  syncMethodUse,
} from './app/model.js';
import { currentTool, installPointer } from './app/pointer.js';
import { exportJson, exportPng, updateUrl } from './app/share.js';
import { selectLayer, state } from './app/state.js';
import { clearError, setIdleText, showError } from './app/status.js';
import { drawMarks, renderOverlay } from './app/view.js';

/**
 * The explorer's page: wires the controls to the app's modules (web/src/app/) and boots. All
 * inference runs in the worker (./worker.ts); the page decodes images, draws, and keeps the URL in
 * step with the view. The modules: state (the one store), model, image, ask (questions to the
 * worker), pointer (click, shift-click, box, paint), layer grid, α (chart and compare), share
 * (URL and exports), with elements, status and backend beside them.
 */

// ---------------------------------------------------------------- controls

$('error-close').addEventListener('click', clearError);
installPointer();

el.modelSelect.addEventListener('change', () => {
  const entry = modelFromKey(el.modelSelect.value);
  if (!entry) return;
  // Keep the user's own image; else show a sample that suits the new model.
  const own = state.image !== null && state.imageEntry?.key === null;
  const sample = state.catalog.models.find((c) => c.id === entry.key)?.samples[0];
  void openModelAndImage(entry, own ? null : imageFromKey(sample ?? null));
});
/** Calls `open` with the files chosen in a file input, and empties the input (so that the same file can be chosen again). */
function onFilesChosen(input: HTMLInputElement, open: (files: File[]) => void): void {
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (files.length > 0) open(files);
  });
}
onFilesChosen(el.modelFiles, (files) => void openFiles(files));
onFilesChosen(el.labelsFile, ([f]) => void applyLabelsFile(f));
onFilesChosen(el.imageFile, ([f]) => void openImage(fileImage(f)));
el.modelUrlForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = el.modelUrl.value.trim();
  if (!url) return;
  const entry = modelFromKey(`url:${new URL(url, location.href).href}`);
  if (entry) void openModelAndImage(entry);
});
el.imageSelect.addEventListener('change', () => {
  const src = imageFromKey(el.imageSelect.value);
  if (src) void openImage(src);
});
for (const input of document.querySelectorAll<HTMLInputElement>('input[name="tool"]')) {
  input.addEventListener('change', () => {
    el.brushRow.hidden = currentTool() !== 'brush';
    drawMarks();
    updateUrl();
  });
}
el.classSelect.addEventListener('change', () => {
  state.classChoice = el.classSelect.value === 'auto' ? null : Number(el.classSelect.value);
  syncClassChip();
  if (state.explanation) void askAgain(state.explanation, state.classChoice ?? undefined);
  else updateUrl();
});
el.classReset.addEventListener('click', () => {
  el.classSelect.value = 'auto';
  el.classSelect.dispatchEvent(new Event('change'));
});
el.classForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void ask({ kind: 'class' }, state.classChoice ?? defaultRegionClass());
});
$('whole-image').addEventListener('click', () => void ask({ kind: 'whole' }));
$('clear-region').addEventListener('click', () => {
  state.region = null;
  state.explanation = null;
  clearGrid();
  renderOverlay();
  drawMarks();
  syncPins();
  renderAlpha();
  el.answer.textContent = state.prediction ? ASK_PROMPT : 'Click a pixel of the image.';
  el.timing.textContent = '';
  updateUrl();
});
el.cancel.addEventListener('click', () => void cancelWork());
el.sidebarToggle.addEventListener('click', () => {
  const open = document.body.classList.toggle('sidebar-open');
  el.sidebarToggle.setAttribute('aria-expanded', String(open));
});
for (const s of [el.layerSelect, el.methodSelect, el.scoreSelect, el.negativeToggle, el.contrastSelect, el.normalizeSelect]) {
  s.addEventListener('change', () => {
    if (s === el.methodSelect) syncMethodUse();
    if (state.explanation) void askAgain(state.explanation);
    else updateUrl();
  });
}
for (const name of COLORMAPS) el.colormapSelect.add(new Option(name, name));
el.colormapSelect.value = 'turbo';
const redraw = () => {
  renderOverlay();
  drawMarks();
  renderColorbar();
  redrawGrid();
  updateUrl();
};
el.colormapSelect.addEventListener('change', redraw);
el.opacity.addEventListener('input', () => {
  renderOverlay();
  drawMarks();
});
el.opacity.addEventListener('change', redraw);
el.backendSelect.addEventListener('change', () => void switchBackend(el.backendSelect.value as BackendChoice));
$('layer-grid-run').addEventListener('click', () => void runGrid());
$('pin-a').addEventListener('click', () => pin('A'));
$('pin-b').addEventListener('click', () => pin('B'));
$('export-png').addEventListener('click', exportPng);
$('export-json').addEventListener('click', exportJson);
$('copy-link').addEventListener('click', () => {
  updateUrl();
  void navigator.clipboard?.writeText(location.href).then(
    () => (el.status.textContent = 'link copied'),
    () => showError(new Error(`copy this link: ${location.href}`)),
  );
});

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    for (const stage of Object.values(stages)) if (stage.shown) stage.show(stage.shown);
    drawMarks();
  }, 100);
});

// Drag and drop, paste.
acceptDroppedFiles(el.dropHint, (files) => void openFiles(files));
window.addEventListener('paste', (ev) => {
  const target = ev.target as HTMLElement | null;
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA')) return;
  const files = [...(ev.clipboardData?.files ?? [])].filter(isImage);
  if (files.length > 0) {
    ev.preventDefault();
    void openImage({ load: () => decodeImage(files[0], 'the pasted image'), entry: { key: null, name: 'pasted image' } });
  }
});

// ---------------------------------------------------------------- start

async function boot(): Promise<void> {
  const view = decodeState(location.search);
  if (view.colormap && (COLORMAPS as readonly string[]).includes(view.colormap)) el.colormapSelect.value = view.colormap;
  if (view.opacity !== undefined) el.opacity.value = String(view.opacity);
  if (view.score) el.scoreSelect.value = view.score;
  const choice = (['auto', 'wasm', 'webgl', 'webgpu', 'cpu'].includes(view.backend ?? '') ? view.backend : 'auto') as BackendChoice;
  el.backendSelect.value = choice;
  renderColorbar();
  try {
    const res = await fetch('catalog.json');
    if (res.ok) state.catalog = (await res.json()) as Catalog;
  } catch {
    // No bundled models: the user's own still work.
  }
  fillModelSelect();
  try {
    await initBackend(choice);
  } catch (err) {
    showError(err);
    return;
  }
  if (view.method && state.methods.includes(view.method)) el.methodSelect.value = view.method;
  if (view.negative) el.negativeToggle.checked = true;
  if (view.normalize) el.normalizeSelect.value = view.normalize;
  syncMethodUse();
  const tool = document.querySelector<HTMLInputElement>(`input[name="tool"][value="${CSS.escape(view.tool ?? 'pixel')}"]`);
  if (tool) {
    tool.checked = true;
    el.brushRow.hidden = currentTool() !== 'brush';
  }
  const entry =
    (view.model ? modelFromKey(view.model, view.labels) : null) ?? (state.catalog.models[0] ? catalogEntry(state.catalog.models[0]) : null);
  if (view.model && !modelFromKey(view.model, view.labels))
    showError(new Error(`the link names a model this page does not have: ${view.model}`));
  if (!entry) {
    setIdleText('no bundled model: open your own');
    hook.ready = true;
    return;
  }
  let ok = await openModelAndImage(entry, imageFromKey(view.image ?? null));
  if (!state.info && entry.key !== state.catalog.models[0]?.id && state.catalog.models[0]) {
    // The linked model failed: say so, and open the default one so the page still works.
    const why = hook.lastError;
    ok = await openModelAndImage(catalogEntry(state.catalog.models[0]));
    if (why) showError(new Error(why));
  }
  if (ok && state.info) {
    // The method list now knows what this model cannot run; the contrast list knows its classes.
    if (view.method && [...el.methodSelect.options].some((o) => o.value === view.method && !o.disabled))
      el.methodSelect.value = view.method;
    syncMethodUse();
    if (view.contrast !== undefined && view.contrast < state.info.classCount) el.contrastSelect.value = String(view.contrast);
    selectLayer(view.layer);
    if (view.class !== undefined && view.region?.kind !== 'class') {
      state.classChoice = view.class;
      el.classSelect.value = String(view.class);
      syncClassChip();
    }
    if (view.region) await ask(view.region, view.region.kind === 'class' ? view.class : undefined);
  }
  setIdleText('ready');
  hook.ready = true;
}

void boot();
