/** The model: bundled or by URL or files, its labels, layers, classes and methods; a new backend reopens it. */
import type { CatalogModel } from '../../bundled.js';
import { type Labels, parseLabelsWithColors as parseLabels } from '../../../src/io/labels.js';
import type { BackendChoice } from '../protocol.js';
import { renderAlpha } from './alpha.js';
import { askAgain, showExplanation } from './ask.js';
import { BACKEND_KEY, call, initBackend, renderBackend, withStorage, worker } from './backend.js';
import { el, stages } from './elements.js';
import { defaultImageKey, fillImageSelect, imageFromKey, loadImage, predict, renderPrediction, showImage } from './image.js';
import { clearGrid } from './layer-grid.js';
import { syncMethodOptions } from './method-options.js';
import { updateUrl } from './share.js';
import { type ImageSource, type ModelEntry, className, explainsInput, layer, selectLayer, state } from './state.js';
import { clearError, showError } from './status.js';

export function fillModelSelect(): void {
  el.modelSelect.innerHTML = '';
  for (const m of state.catalog.models) el.modelSelect.add(new Option(m.name, m.id));
  const custom = new Option('(your model)', '', false, false);
  custom.disabled = true;
  el.modelSelect.add(custom);
}

export function catalogEntry(m: CatalogModel): ModelEntry {
  const abs = (u: string) => new URL(u, location.href).href;
  return { key: m.id, name: m.name, source: { kind: 'url', url: abs(m.url), labelsUrl: m.labels ? abs(m.labels) : undefined } };
}

export async function fetchLabels(url: string): Promise<Labels> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch the labels file ${url}: HTTP ${res.status}`);
  return parseLabels(await res.text());
}

/** Loads a model; on failure the previous model stays and keeps working. */
export async function openModel(entry: ModelEntry): Promise<boolean> {
  clearError();
  try {
    let labels = entry.labels;
    if (!labels && entry.source.kind === 'url' && entry.source.labelsUrl) labels = await fetchLabels(entry.source.labelsUrl);
    const reply = await call(
      `loading ${entry.name}`,
      { type: 'load-model', source: entry.source, classNames: labels?.names },
      'load-model',
    );
    if (!reply) return false;
    state.model = { ...entry, labels };
    state.info = reply.info;
  } catch (err) {
    showError(err);
    syncModelSelect();
    return false;
  }
  const info = state.info;
  if (!state.model.labels && entry.source.kind === 'url' && !entry.source.labelsUrl) {
    const beside = await labelsBeside(entry.source.url, info.classCount);
    if (beside) state.model = { ...state.model, labels: beside.labels, source: { ...entry.source, labelsUrl: beside.url } };
  }
  renderBackend();
  state.region = null;
  state.explanation = null;
  state.classChoice = null;
  state.prediction = null;
  state.pinA = null;
  state.pinB = null;
  clearGrid();
  renderAlpha();
  syncModelSelect();
  const m = state.catalog.models.find((c) => c.id === entry.key);
  el.modelDesc.textContent = m?.description ?? entry.name;
  el.modelSummary.textContent =
    `${info.engine ? `${info.kind} model on ${info.engine}` : info.kind}, input ${info.input.width}×${info.input.height}×${info.input.channels}, ` +
    `output ${info.output.width}×${info.output.height}×${info.output.channels}${info.output.activation !== 'none' ? ` (${info.output.activation})` : ''}, ` +
    `${info.classCount} classes, ${info.layers.length} layers; loaded in ${Math.round(info.loadMs)} ms`;
  fillLayers();
  fillClasses();
  fillContrast();
  fillMethods();
  stages.overlay.clear();
  stages.prediction.clear();
  el.answer.textContent = 'Click a pixel of the image.';
  el.timing.textContent = '';
  return true;
}

/**
 * The labels file beside a model given by URL (labels.json, else labels.txt, in the model's
 * folder), when one is there and names as many classes as the model has; else null (quietly).
 */
async function labelsBeside(modelUrl: string, classCount: number): Promise<{ labels: Labels; url: string } | null> {
  for (const name of ['labels.json', 'labels.txt']) {
    try {
      const url = new URL(name, new URL(modelUrl, location.href)).href;
      const res = await fetch(url);
      if (!res.ok) continue;
      const labels = parseLabels(await res.text());
      if (labels.names.length === classCount) return { labels, url };
    } catch {
      // Not there or not a labels file: the model's own names stay.
    }
  }
  return null;
}

/** Input-level methods ignore the layer: the layer list is disabled with the reason and the layer grid is off. */
export function syncMethodUse(): void {
  const method = el.methodSelect.value;
  const input = explainsInput(method);
  el.layerSelect.disabled = input;
  el.layerSelect.title = input ? `${method} explains the input: the layer does not matter` : '';
  el.layerHint.hidden = !input;
  el.gridBox.hidden = input;
  el.gridOff.hidden = !input;
  if (input) clearGrid();
  syncMethodOptions(method);
}

/** Shows whether a class is fixed for every click (chosen in the list), with its reset. */
export function syncClassChip(): void {
  const c = state.classChoice;
  el.classFixed.hidden = c === null;
  el.classFixedText.textContent = c === null ? '' : `class: ${className(c)} — fixed for every click`;
}

export function syncModelSelect(): void {
  const key = state.model?.key;
  if (state.catalog.models.some((m) => m.id === key)) el.modelSelect.value = key as string;
  else el.modelSelect.selectedIndex = el.modelSelect.options.length - 1;
}

export function fillLayers(): void {
  const info = state.info;
  el.layerSelect.innerHTML = '';
  if (!info) return;
  for (const l of info.layers) {
    const shape = l.outputShape.slice(1).join('×');
    const o = new Option(`${l.bottleneck ? '★' : '\u2003'} ${l.name}  ${shape} · ${l.type}`, l.name);
    if (l.bottleneck) o.title = 'the bottleneck (the default)';
    el.layerSelect.add(o);
  }
  el.layerSelect.value = info.bottleneck;
}

export function fillClasses(): void {
  const info = state.info;
  el.classSelect.innerHTML = '';
  el.classSelect.add(new Option('auto: the prediction at the region', 'auto'));
  if (!info) return;
  for (let c = 0; c < info.classCount; c++) el.classSelect.add(new Option(`${c} · ${className(c)}`, String(c)));
  el.classSelect.value = state.classChoice === null ? 'auto' : String(state.classChoice);
  syncClassChip();
}

/** The contrast class list ("rather than c′"): none, or one of the model's classes. */
export function fillContrast(): void {
  const info = state.info;
  const current = el.contrastSelect.value;
  el.contrastSelect.innerHTML = '';
  el.contrastSelect.add(new Option('— (no contrast)', 'none'));
  if (!info) return;
  for (let c = 0; c < info.classCount; c++) el.contrastSelect.add(new Option(`${c} · ${className(c)}`, String(c)));
  el.contrastSelect.value = [...el.contrastSelect.options].some((o) => o.value === current) ? current : 'none';
}

export function fillMethods(): void {
  const current = el.methodSelect.value || 'seg-grad-cam';
  el.methodSelect.innerHTML = '';
  const unsupported = state.info?.unsupported ?? {};
  for (const m of state.methods) {
    const o = new Option(m, m);
    // Greyed out with the reason on hover: this model's engine lacks what the method needs.
    if (unsupported[m]) {
      o.disabled = true;
      o.title = unsupported[m];
      o.textContent = `${m} (not for this model)`;
    }
    el.methodSelect.add(o);
  }
  el.methodSelect.value = state.methods.includes(current) && !unsupported[current] ? current : 'seg-grad-cam';
  syncMethodUse();
}

export function modelFromKey(key: string, labelsUrl?: string): ModelEntry | null {
  if (key.startsWith('url:')) {
    const url = key.slice(4);
    return { key, name: url.split('/').slice(-2).join('/'), source: { kind: 'url', url, labelsUrl } };
  }
  const m = state.catalog.models.find((c) => c.id === key);
  return m ? catalogEntry(m) : null;
}

/**
 * Opens a model, then `image`, or else keeps the current image (or, with none, opens the model's
 * first sample); the image is predicted once. When `image` cannot be read, the current one stays.
 */
export async function openModelAndImage(entry: ModelEntry, image?: ImageSource | null): Promise<boolean> {
  if (!(await openModel(entry))) return false;
  fillImageSelect();
  const src = image ?? (state.image ? null : imageFromKey(defaultImageKey()));
  const img = src && (await loadImage(src));
  if (img) return showImage(img, src.entry);
  if (!state.image) return !src;
  stages.image.show(state.image);
  return predict();
}

/** A labels file's classes, or null (the error shown) when it cannot be read. */
export async function readLabels(file: File): Promise<Labels | null> {
  try {
    return parseLabels(await file.text());
  } catch (err) {
    showError(new Error(`${file.name}: ${(err as Error).message}`));
    return null;
  }
}

export async function applyLabelsFile(file: File): Promise<void> {
  clearError();
  const labels = await readLabels(file);
  if (!labels) return;
  const n = state.info?.classCount;
  if (n !== undefined && labels.names.length !== n) {
    showError(new Error(`${file.name} lists ${labels.names.length} classes but the model has ${n}`));
    return;
  }
  if (state.model) state.model.labels = labels;
  fillClasses();
  fillContrast();
  renderPrediction();
  if (state.explanation) showExplanation(state.explanation);
}

/** A new backend: a new worker, then the same model, image and question again. */
export async function switchBackend(choice: BackendChoice): Promise<void> {
  const model = state.model;
  const img = state.image;
  const shown = state.explanation;
  const shownLayer = layer();
  worker.restart();
  if (choice === 'auto') withStorage(() => localStorage.removeItem(BACKEND_KEY));
  try {
    await initBackend(choice);
  } catch (err) {
    showError(err);
    return;
  }
  if (model && (await openModel(model)) && img) {
    state.image = img;
    stages.image.show(img);
    selectLayer(shownLayer);
    if ((await predict()) && shown) await askAgain(shown);
  }
  updateUrl();
}
