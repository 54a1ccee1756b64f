/**
 * The explorer's page: controls, panels and the flow between them. All inference runs in the
 * worker (./worker.ts); this thread decodes images, draws, and keeps the URL in step with the view.
 */
import { explanationFigure } from '../../src/figure.js';
import { explanationJson } from '../../src/io/json.js';
import type { RgbaImage } from '../../src/image.js';
import {
  COLORMAPS,
  classColor,
  colormapLut,
  defaultPalette,
  labelImage,
  lutIndex,
  overlayHeatmap,
  resizeLabelsNearest,
  type ColormapName,
  type Rgb,
} from '../../src/render/index.js';
import { connectedComponent, toOutputCell, type Region } from '../../src/region/region.js';
import type { Catalog, CatalogModel } from '../bundled.js';
import { DecodeError, decodeImage, fetchImage } from './image-decode.js';
import { parseLabels, type Labels } from './labels.js';
import {
  ORT_WASM_DIR,
  probeText,
  type BackendChoice,
  type BackendReport,
  type ExplainParams,
  type ExplanationMsg,
  type LayerRow,
  type ModelInfo,
  type ModelSource,
  type PredictionInfo,
  type Progress,
  type Reply,
} from './protocol.js';
import { cosine, drawAlphaChart, drawCell, makeCell, resolutionChanges, thumbnailBase, type Pinned } from './ui/compare.js';
import { putImage, Stage } from './ui/stage.js';
import { decodeState, encodeState, type ViewState } from './url-state.js';
import { InferenceWorker } from './worker-client.js';

// ---------------------------------------------------------------- elements

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  status: $('status-text'),
  spinner: $('status-spinner'),
  progress: $<HTMLProgressElement>('status-progress'),
  backend: $('backend'),
  error: $('error'),
  errorText: $('error-text'),
  modelSelect: $<HTMLSelectElement>('model-select'),
  modelDesc: $('model-desc'),
  modelFiles: $<HTMLInputElement>('model-files'),
  modelUrlForm: $<HTMLFormElement>('model-url-form'),
  modelUrl: $<HTMLInputElement>('model-url'),
  labelsFile: $<HTMLInputElement>('labels-file'),
  modelSummary: $('model-summary'),
  imageSelect: $<HTMLSelectElement>('image-select'),
  imageFile: $<HTMLInputElement>('image-file'),
  brushRow: $('brush-row'),
  brushSize: $<HTMLInputElement>('brush-size'),
  classForm: $<HTMLFormElement>('class-form'),
  classSelect: $<HTMLSelectElement>('class-select'),
  layerSelect: $<HTMLSelectElement>('layer-select'),
  methodSelect: $<HTMLSelectElement>('method-select'),
  scoreSelect: $<HTMLSelectElement>('score-select'),
  colormapSelect: $<HTMLSelectElement>('colormap-select'),
  opacity: $<HTMLInputElement>('opacity'),
  backendSelect: $<HTMLSelectElement>('backend-select'),
  legend: $('legend'),
  colorbar: $('colorbar'),
  answer: $('answer-text'),
  timing: $('timing'),
  readout: $('hover-readout'),
  grid: $('layer-grid'),
  gridStatus: $('layer-grid-status'),
  gridFilter: $<HTMLInputElement>('layer-grid-filter'),
  alphaText: $('alpha-text'),
  alphaChart: $<HTMLCanvasElement>('alpha-chart'),
  dropHint: $('drop-hint'),
};
const stages = {
  image: new Stage($('stage-image')),
  prediction: new Stage($('stage-prediction')),
  overlay: new Stage($('stage-overlay')),
};

// ---------------------------------------------------------------- state

type Tool = 'pixel' | 'box' | 'brush' | 'object' | 'class';

interface ModelEntry {
  /** What goes in the URL: a catalog id or `url:…`; null for local files (not shareable). */
  key: string | null;
  name: string;
  source: ModelSource;
  labels?: Labels;
}

interface ImageEntry {
  key: string | null;
  name: string;
}

/** An image to open: how to get its pixels, and what to call it. */
interface ImageSource {
  load: () => Promise<RgbaImage>;
  entry: ImageEntry;
}

/** An answer on the page: the worker's explanation and the region that was asked. */
type Answer = ExplanationMsg & { region: Region };

/** A cell of the layer grid, with its answer once the worker sent it. */
interface GridCell {
  layer: LayerRow;
  explanation: Answer;
  element: HTMLElement;
  canvas: HTMLCanvasElement;
}

const state = {
  catalog: { models: [], samples: [] } as Catalog,
  backend: null as BackendReport | null,
  methods: ['seg-grad-cam'] as string[],
  /** The open model, with the labels the page uses for it. */
  model: null as ModelEntry | null,
  info: null as ModelInfo | null,
  image: null as RgbaImage | null,
  imageEntry: null as ImageEntry | null,
  prediction: null as PredictionInfo | null,
  /** The region drawn: the shown answer's, or one being asked or dragged. */
  region: null as Region | null,
  /** null = the prediction at the region (the default). */
  classChoice: null as number | null,
  explanation: null as Answer | null,
  grid: [] as GridCell[],
  pinA: null as Pinned | null,
  pinB: null as Pinned | null,
  /** Brush strokes being painted (image resolution). */
  brush: null as Uint8Array | null,
};

const colormap = (): ColormapName => el.colormapSelect.value as ColormapName;
const opacity = (): number => Number(el.opacity.value);
/** The layer explained ('' before a model is open). */
const layer = (): string => el.layerSelect.value;
/** What the model and image are called in the test hook and the JSON export. */
const modelName = (): string | null => state.model?.key ?? state.model?.name ?? null;
const imageName = (): string | null => state.imageEntry?.key ?? state.imageEntry?.name ?? null;
/** What runs the open model: onnxruntime-web for an ONNX model, else the TF.js backend. */
const engine = (): string => state.info?.engine ?? state.backend?.backend ?? '?';

/** Selects a layer, when the model has it. */
function selectLayer(name: string | undefined): void {
  if (name && state.info?.layers.some((l) => l.name === name)) el.layerSelect.value = name;
}

/** What tests (and curious users) can read: the raw answers and the time each took. */
interface TestHook {
  ready: boolean;
  /** Images predicted (one forward pass each). */
  predictions: number;
  answers: number;
  errors: number;
  lastError: string | null;
  lastExplanation: ExplanationMsg | null;
  /** The last heatmap (image size, [0, 1]), as computed by the library in the worker. */
  lastHeatmap: Float32Array | null;
  /** The same as base64 of its float32 bytes (fast to carry out of the page). */
  lastHeatmapBase64: () => string | null;
  /** The region of the last answer. */
  lastRegion: Region | null;
  gridDone: number;
  backend: BackendReport | null;
  /** Per answer: worker time, and wall time from the request to the drawn heatmap. */
  timings: Array<{ ms: number; wallMs: number; cached: boolean; layer: string }>;
  state: () => {
    model: string | null;
    image: string | null;
    layer: string;
    region: Region | null;
    classIndex: number | null;
    layers: LayerRow[];
    engine: string;
  };
}
const hook: TestHook = {
  ready: false,
  predictions: 0,
  answers: 0,
  errors: 0,
  lastError: null,
  lastExplanation: null,
  lastHeatmap: null,
  lastHeatmapBase64: () => {
    const h = hook.lastHeatmap;
    if (!h) return null;
    const bytes = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  },
  lastRegion: null,
  gridDone: 0,
  backend: null,
  timings: [],
  state: () => ({
    model: modelName(),
    image: imageName(),
    layer: layer(),
    region: state.region,
    classIndex: state.explanation?.classIndex ?? null,
    layers: state.info?.layers ?? [],
    engine: engine(),
  }),
};
(window as unknown as { __segGradCam: TestHook }).__segGradCam = hook;

// ---------------------------------------------------------------- status, errors

const active = new Map<number, { label: string; started: number; progress?: Progress }>();
let activeSeq = 0;
let idleText = 'ready';

function begin(label: string): { update(p: Progress): void; end(): void } {
  const id = ++activeSeq;
  active.set(id, { label, started: performance.now() });
  renderStatus();
  return {
    update(p: Progress) {
      const a = active.get(id);
      if (a) a.progress = p;
      renderStatus();
    },
    end() {
      active.delete(id);
      renderStatus();
    },
  };
}

function renderStatus(): void {
  const latest = [...active.values()].pop();
  el.spinner.hidden = !latest;
  if (!latest) {
    el.status.textContent = idleText;
    el.progress.hidden = true;
    return;
  }
  const secs = (performance.now() - latest.started) / 1000;
  const phase = latest.progress?.phase ? ` — ${latest.progress.phase}` : '';
  el.status.textContent = `${latest.label}${phase}${secs >= 0.5 ? ` (${secs.toFixed(1)} s)` : ''}`;
  const f = latest.progress?.fraction;
  el.progress.hidden = f === undefined;
  if (f !== undefined) el.progress.value = f;
}
setInterval(() => active.size > 0 && renderStatus(), 200);

function showError(err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  el.errorText.textContent = msg;
  el.error.hidden = false;
  hook.errors++;
  hook.lastError = msg;
}
const clearError = () => {
  el.error.hidden = true;
};
$('error-close').addEventListener('click', clearError);

// ---------------------------------------------------------------- worker

const worker = new InferenceWorker(() => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'seg-grad-cam' }));

async function call<T extends Reply['type']>(
  label: string,
  request: Parameters<InferenceWorker['call']>[0],
  expected: T,
  hooks: Parameters<InferenceWorker['call']>[1] = {},
): Promise<Extract<Reply, { type: T }> | null> {
  const task = begin(label);
  try {
    const reply = await worker.call(request, {
      ...hooks,
      onProgress: (p) => {
        task.update(p);
        hooks.onProgress?.(p);
      },
    });
    if (reply.type === 'superseded') return null;
    if (reply.type !== expected) throw new Error(`internal: expected ${expected}, got ${reply.type}`);
    return reply as Extract<Reply, { type: T }>;
  } finally {
    task.end();
  }
}

const BACKEND_KEY = 'seg-grad-cam.backend';

/** Runs a localStorage access; where the browser allows no storage, nothing is remembered (and the backend is timed again). */
function withStorage<T>(access: () => T): T | undefined {
  try {
    return access();
  } catch {
    return undefined;
  }
}

async function initBackend(choice: BackendChoice): Promise<void> {
  const saved = withStorage(() => JSON.parse(localStorage.getItem(BACKEND_KEY) ?? 'null') as { ua: string; backend: string } | null);
  const remembered = saved && saved.ua === navigator.userAgent ? saved.backend : undefined;
  const ortWasmBase = new URL(ORT_WASM_DIR, document.baseURI).href;
  const reply = await call(
    'starting',
    { type: 'init', backend: choice, cachedChoice: choice === 'auto' ? remembered : undefined, ortWasmBase },
    'init',
  );
  if (!reply) return;
  state.backend = reply.report;
  state.methods = reply.methods;
  hook.backend = reply.report;
  if (choice === 'auto' && reply.report.probes.length > 0) {
    withStorage(() => localStorage.setItem(BACKEND_KEY, JSON.stringify({ ua: navigator.userAgent, backend: reply.report.backend })));
  }
  renderBackend();
  fillMethods();
}

function renderBackend(): void {
  const r = state.backend;
  if (!r) return;
  const probes = r.probes.map((p) => probeText(p, 1));
  const onnx = state.info?.engine ?? null;
  el.backend.innerHTML = '';
  el.backend.append('backend: ');
  const b = document.createElement('b');
  b.textContent = onnx ?? r.backend;
  // An ONNX model runs on ONNX Runtime; the TF.js backend only resizes the image and the heatmap.
  el.backend.append(b, onnx ? ` · ONNX model (TF.js on ${r.backend} for pre- and post-processing)` : ` · ${r.reason}`);
  el.backend.title = probes.length > 0 ? `TF.js backend probe (forward + gradient): ${probes.join('; ')}` : r.reason;
  el.backend.dataset.backend = onnx ?? r.backend;
}

// ---------------------------------------------------------------- model

function fillModelSelect(): void {
  el.modelSelect.innerHTML = '';
  for (const m of state.catalog.models) el.modelSelect.add(new Option(m.name, m.id));
  const custom = new Option('(your model)', '', false, false);
  custom.disabled = true;
  el.modelSelect.add(custom);
}

function catalogEntry(m: CatalogModel): ModelEntry {
  const abs = (u: string) => new URL(u, location.href).href;
  return { key: m.id, name: m.name, source: { kind: 'url', url: abs(m.url), labelsUrl: m.labels ? abs(m.labels) : undefined } };
}

async function fetchLabels(url: string): Promise<Labels> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch the labels file ${url}: HTTP ${res.status}`);
  return parseLabels(await res.text());
}

/** Loads a model; on failure the previous model stays and keeps working. */
async function openModel(entry: ModelEntry): Promise<boolean> {
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
  stages.overlay.clear();
  stages.prediction.clear();
  el.answer.textContent = 'Click a pixel of the image.';
  el.timing.textContent = '';
  return true;
}

function syncModelSelect(): void {
  const key = state.model?.key;
  if (state.catalog.models.some((m) => m.id === key)) el.modelSelect.value = key as string;
  else el.modelSelect.selectedIndex = el.modelSelect.options.length - 1;
}

function className(c: number): string {
  return state.model?.labels?.names[c] ?? state.info?.classNames?.[c] ?? `class ${c}`;
}

function palette(): Rgb[] {
  const base = [...defaultPalette()];
  state.model?.labels?.colors.forEach((c, i) => {
    if (c) base[i] = c;
  });
  return base;
}

function fillLayers(): void {
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

function fillClasses(): void {
  const info = state.info;
  el.classSelect.innerHTML = '';
  el.classSelect.add(new Option('auto: the prediction at the region', 'auto'));
  if (!info) return;
  for (let c = 0; c < info.classCount; c++) el.classSelect.add(new Option(`${c} · ${className(c)}`, String(c)));
  el.classSelect.value = state.classChoice === null ? 'auto' : String(state.classChoice);
}

function fillMethods(): void {
  const current = el.methodSelect.value || 'seg-grad-cam';
  el.methodSelect.innerHTML = '';
  for (const m of state.methods) el.methodSelect.add(new Option(m, m));
  el.methodSelect.value = state.methods.includes(current) ? current : 'seg-grad-cam';
}

// ---------------------------------------------------------------- image

function fillImageSelect(): void {
  el.imageSelect.innerHTML = '';
  const model = state.catalog.models.find((m) => m.id === state.model?.key);
  const suited = new Set(model?.samples ?? []);
  const ordered = [...state.catalog.samples].sort((a, b) => Number(suited.has(b.url)) - Number(suited.has(a.url)));
  for (const s of ordered) el.imageSelect.add(new Option(s.name, s.url));
  const custom = new Option('(your image)', '', false, false);
  custom.disabled = true;
  el.imageSelect.add(custom);
  syncImageSelect();
}

function syncImageSelect(): void {
  const key = state.imageEntry?.key;
  const found = state.catalog.samples.some((s) => s.url === key);
  if (found) el.imageSelect.value = key as string;
  else el.imageSelect.selectedIndex = el.imageSelect.options.length - 1;
}

/** An image's pixels, or null (the error shown) when it cannot be read. */
async function loadImage(src: ImageSource): Promise<RgbaImage | null> {
  clearError();
  try {
    return await src.load();
  } catch (err) {
    showError(err instanceof DecodeError ? err : new Error(`cannot open the image: ${(err as Error).message}`));
    syncImageSelect();
    return null;
  }
}

async function openImage(src: ImageSource): Promise<boolean> {
  const img = await loadImage(src);
  return img ? showImage(img, src.entry) : false;
}

/** Makes an image the current one, shows it and predicts it. */
function showImage(img: RgbaImage, entry: ImageEntry): Promise<boolean> {
  state.image = img;
  state.imageEntry = entry;
  state.region = null;
  state.explanation = null;
  clearGrid();
  syncImageSelect();
  stages.image.show(img);
  stages.overlay.show(img);
  drawMarks();
  return predict();
}

/** Sends the image to the worker: its one forward pass, and the prediction. */
async function predict(): Promise<boolean> {
  const img = state.image;
  if (!img || !state.info) return false;
  try {
    const data = img.data.slice();
    const reply = await call('forward pass', { type: 'set-image', width: img.width, height: img.height, data }, 'set-image', {
      transfer: [data.buffer],
    });
    if (!reply || state.image !== img) return false;
    state.prediction = reply.prediction;
    hook.predictions++;
  } catch (err) {
    showError(err);
    return false;
  }
  renderPrediction();
  stages.overlay.show(img);
  el.answer.textContent = 'Click a pixel of the image (shift-click adds pixels), drag a box, or paint with the brush.';
  el.timing.textContent = `forward pass ${Math.round(state.prediction.ms)} ms (once per image and model)`;
  updateUrl();
  return true;
}

function renderPrediction(): void {
  const p = state.prediction;
  const img = state.image;
  if (!p || !img) return;
  const pal = palette();
  const onImage = resizeLabelsNearest(p.labels, p.width, p.height, img.width, img.height);
  stages.prediction.show(labelImage(onImage, img.width, img.height, pal));
  // Legend: the classes present, most frequent first; a click picks the class.
  el.legend.innerHTML = '';
  for (const [c, n] of classCounts(p.labels)) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.class = String(c);
    b.title = `${className(c)}: ${((100 * n) / p.labels.length).toFixed(1)}% of the output; click to explain all its pixels`;
    const sw = document.createElement('i');
    const [r, g, bl] = classColor(pal, c);
    sw.style.background = `rgb(${r},${g},${bl})`;
    b.append(sw, className(c));
    b.addEventListener('click', () => {
      state.classChoice = c;
      el.classSelect.value = String(c);
      void ask({ kind: 'class' }, c);
    });
    el.legend.append(b);
  }
  drawMarks();
}

function renderColorbar(): void {
  const lut = colormapLut(colormap());
  const stops: string[] = [];
  for (let i = 0; i <= 8; i++) {
    const j = lutIndex(i / 8) * 3;
    stops.push(`rgb(${lut[j]},${lut[j + 1]},${lut[j + 2]}) ${(i / 8) * 100}%`);
  }
  el.colorbar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  el.colorbar.title = `${colormap()}: 0 (left) to the maximum (right)`;
}

// ---------------------------------------------------------------- asking

let askSeq = 0;

/** The class under an image pixel in the current prediction. */
function classAt(x: number, y: number): number | null {
  const p = state.prediction;
  const img = state.image;
  if (!p || !img) return null;
  const [ox, oy] = toOutputCell(x, y, { imageWidth: img.width, imageHeight: img.height, outWidth: p.width, outHeight: p.height });
  return p.labels[oy * p.width + ox];
}

/** The classes of a prediction with their pixel counts, most frequent first. */
function classCounts(labels: Int32Array): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (const c of labels) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

/** The class for the class-region form when it says "auto": the last answer's, else the most common non-background class. */
function defaultRegionClass(): number {
  if (state.explanation) return state.explanation.classIndex;
  if (!state.prediction) return 0;
  const sorted = classCounts(state.prediction.labels);
  return (sorted.find(([c]) => c !== 0) ?? sorted[0])[0];
}

/** The question's parts that the controls set (all but the layer). */
function question(region: Region, classId: number | undefined): Omit<ExplainParams, 'layer'> {
  return { region, classId, method: el.methodSelect.value, score: el.scoreSelect.value as ExplainParams['score'] };
}

async function ask(region: Region, classOverride?: number): Promise<void> {
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
const askAgain = (e: Answer, cls = e.classIndex) => ask(e.region, e.region.kind === 'class' ? cls : undefined);

function showExplanation(e: Answer): void {
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

function renderOverlay(): void {
  const img = state.image;
  const e = state.explanation;
  if (!img) return;
  if (!e || e.width !== img.width || e.height !== img.height) {
    stages.overlay.show(img);
    return;
  }
  stages.overlay.show(overlayHeatmap(img, e.heatmap, { colormap: colormap(), opacity: opacity() }));
}

/** Region, contour of M and markers on the three panels. */
function drawMarks(hover?: { mask: Uint8Array; w: number; h: number }): void {
  const img = state.image;
  for (const stage of Object.values(stages)) {
    const ctx = stage.clearMarks();
    if (!img) continue;
    const e = state.explanation;
    const r = state.region;
    if (hover && stage === stages.image) stage.fill(ctx, hover.mask, hover.w, hover.h, 'rgba(255,181,71,0.35)');
    if (e && r === e.region) stage.contour(ctx, e.regionMask, e.prediction.width, e.prediction.height, '#ffffff');
    if (state.brush && stage !== stages.prediction) stage.fill(ctx, state.brush, img.width, img.height, 'rgba(255,255,255,0.35)');
    if (!r) continue;
    if (r.kind === 'pixel' || r.kind === 'object') stage.marker(ctx, r.x, r.y);
    else if (r.kind === 'pixels') for (const [x, y] of r.points) stage.marker(ctx, x, y);
    else if (r.kind === 'box') stage.box(ctx, r.x0, r.y0, r.x1, r.y1);
    else if (r.kind === 'mask' && r !== e?.region) stage.fill(ctx, r.mask, r.width, r.height, 'rgba(255,255,255,0.3)');
  }
}

// ---------------------------------------------------------------- pointer input

function currentTool(): Tool {
  return (document.querySelector('input[name="tool"]:checked') as HTMLInputElement | null)?.value as Tool;
}

let drag: { stage: Stage; x0: number; y0: number; moved: boolean } | null = null;

function paint(x: number, y: number): void {
  const img = state.image;
  if (!img || !state.brush) return;
  const r = Number(el.brushSize.value) * Math.max(1, Math.round(Math.max(img.width, img.height) / 128));
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (dx * dx + dy * dy > r * r) continue;
      const px = x + dx;
      const py = y + dy;
      if (px >= 0 && py >= 0 && px < img.width && py < img.height) state.brush[py * img.width + px] = 1;
    }
  }
}

function onPointerDown(stage: Stage, event: PointerEvent): void {
  if (event.button !== 0 || !state.image || !state.prediction || !stage.inside(event)) return;
  const [x, y] = stage.pixelAt(event);
  const tool = currentTool();
  stage.base.setPointerCapture(event.pointerId);
  if (tool === 'box') {
    drag = { stage, x0: x, y0: y, moved: false };
    state.region = { kind: 'box', x0: x, y0: y, x1: x, y1: y };
    drawMarks();
  } else if (tool === 'brush') {
    const img = state.image;
    const keep = event.shiftKey && state.region?.kind === 'mask' ? state.region.mask.slice() : null;
    state.brush = keep ?? new Uint8Array(img.width * img.height);
    drag = { stage, x0: x, y0: y, moved: false };
    paint(x, y);
    drawMarks();
  }
}

function onPointerMove(stage: Stage, event: PointerEvent): void {
  readout(stage, event);
  if (drag && drag.stage === stage) {
    const [x, y] = stage.pixelAt(event);
    drag.moved = true;
    if (currentTool() === 'box') {
      state.region = { kind: 'box', x0: drag.x0, y0: drag.y0, x1: x, y1: y };
      drawMarks();
    } else if (currentTool() === 'brush') {
      // Fill the gap from the last point so fast strokes stay connected.
      const steps = Math.max(Math.abs(x - drag.x0), Math.abs(y - drag.y0));
      for (let i = 1; i <= steps; i++)
        paint(Math.round(drag.x0 + ((x - drag.x0) * i) / steps), Math.round(drag.y0 + ((y - drag.y0) * i) / steps));
      drag.x0 = x;
      drag.y0 = y;
      drawMarks();
    }
    return;
  }
  if (currentTool() === 'object' && state.prediction && state.image && stage.inside(event)) {
    const [x, y] = stage.pixelAt(event);
    const p = state.prediction;
    const [ox, oy] = toOutputCell(x, y, {
      imageWidth: state.image.width,
      imageHeight: state.image.height,
      outWidth: p.width,
      outHeight: p.height,
    });
    drawMarks({ mask: objectMask(ox, oy), w: p.width, h: p.height });
  }
}

let objectCache: { labels: Int32Array; cell: number; mask: Uint8Array } | null = null;
function objectMask(ox: number, oy: number): Uint8Array {
  const p = state.prediction as NonNullable<typeof state.prediction>;
  const cell = oy * p.width + ox;
  if (objectCache && objectCache.labels === p.labels && objectCache.mask[cell]) return objectCache.mask;
  const mask = connectedComponent(p.labels, p.width, p.height, ox, oy);
  objectCache = { labels: p.labels, cell, mask };
  return mask;
}

function onPointerUp(stage: Stage, event: PointerEvent): void {
  if (event.button !== 0 || !state.image || !state.prediction) return;
  const tool = currentTool();
  const [x, y] = stage.pixelAt(event);
  if (drag && drag.stage === stage) {
    const d = drag;
    drag = null;
    if (tool === 'box') {
      const region: Region = { kind: 'box', x0: Math.min(d.x0, x), y0: Math.min(d.y0, y), x1: Math.max(d.x0, x), y1: Math.max(d.y0, y) };
      void ask(region);
    } else if (tool === 'brush' && state.brush) {
      const img = state.image;
      const mask = state.brush;
      state.brush = null;
      void ask({ kind: 'mask', width: img.width, height: img.height, mask });
    }
    return;
  }
  if (!stage.inside(event)) return;
  if (tool === 'pixel') {
    const r = state.region;
    if (event.shiftKey && r && (r.kind === 'pixel' || r.kind === 'pixels')) {
      const points: Array<[number, number]> = r.kind === 'pixel' ? [[r.x, r.y]] : [...r.points];
      if (!points.some(([px, py]) => px === x && py === y)) points.push([x, y]);
      void ask({ kind: 'pixels', points });
    } else {
      void ask({ kind: 'pixel', x, y });
    }
  } else if (tool === 'object') {
    void ask({ kind: 'object', x, y });
  } else if (tool === 'class') {
    const c = state.classChoice ?? classAt(x, y) ?? 0;
    void ask({ kind: 'class' }, c);
  }
}

function readout(stage: Stage, event: MouseEvent): void {
  const img = state.image;
  if (!img || !stage.inside(event)) return;
  const [x, y] = stage.pixelAt(event);
  const parts = [`(${x}, ${y})`];
  const c = classAt(x, y);
  if (c !== null) parts.push(`predicted ${c} · ${className(c)}`);
  const e = state.explanation;
  if (e && e.width === img.width && e.height === img.height)
    parts.push(`heatmap ${e.heatmap[y * img.width + x].toFixed(3)} (1 = the CAM's maximum, ${e.camMax.toPrecision(3)})`);
  el.readout.textContent = parts.join(' · ');
}

for (const stage of [stages.image, stages.overlay, stages.prediction]) {
  stage.base.addEventListener('pointerdown', (e) => onPointerDown(stage, e));
  stage.base.addEventListener('pointermove', (e) => onPointerMove(stage, e));
  stage.base.addEventListener('pointerup', (e) => onPointerUp(stage, e));
  stage.base.addEventListener('pointerleave', () => {
    if (!drag) drawMarks();
  });
}

// ---------------------------------------------------------------- compare: layer grid

let gridSeq = 0;

function clearGrid(): void {
  gridSeq++;
  state.grid = [];
  el.grid.innerHTML = '';
  el.gridStatus.textContent = '';
  hook.gridDone = 0;
}

async function runGrid(): Promise<void> {
  const info = state.info;
  const e = state.explanation;
  if (!info || !e || !state.image) {
    showError(new Error('ask a question first (click a pixel): the grid shows that region at every layer'));
    return;
  }
  clearGrid();
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

function redrawGrid(): void {
  if (!state.image) return;
  const thumb = thumbnailBase(state.image);
  for (const g of state.grid) drawCell(g.canvas, thumb, g.explanation, colormap(), opacity());
}

function markGridCurrent(): void {
  for (const g of state.grid) g.element.classList.toggle('current', g.layer.name === state.explanation?.layer.name);
}

// ---------------------------------------------------------------- compare: α of two regions

/** A region in a few words. */
function regionText(r: Region): string {
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
const describe = (e: Answer): string => `${regionText(e.region)}, class ${e.classIndex} (${className(e.classIndex)}), ${e.layer.name}`;

function pin(which: 'A' | 'B'): void {
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

function renderAlpha(): void {
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

// ---------------------------------------------------------------- share

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function exportPng(): void {
  const e = state.explanation;
  const img = state.image;
  if (!e || !img) return showError(new Error('nothing to export yet: ask a question first'));
  const r = e.region;
  const marker = r.kind === 'pixel' || r.kind === 'object' ? ([r.x, r.y] as [number, number]) : undefined;
  const names = state.info ? Array.from({ length: state.info.classCount }, (_, c) => className(c)) : undefined;
  const fig = explanationFigure(
    img,
    { ...e, className: className(e.classIndex) },
    { colormap: colormap(), opacity: opacity(), marker, classNames: names },
  );
  const canvas = document.createElement('canvas');
  putImage(canvas, fig);
  canvas.toBlob((blob) => blob && download(blob, `seg-grad-cam-${e.layer.name}-class${e.classIndex}.png`), 'image/png');
}

function exportJson(): void {
  const e = state.explanation;
  if (!e) return showError(new Error('nothing to export yet: ask a question first'));
  const json = explanationJson(
    { ...e, className: className(e.classIndex) },
    {
      model: modelName() ?? '',
      image: imageName() ?? '',
      region: e.region,
      backend: engine(),
      ms: e.ms,
      heatmap: true,
    },
  );
  download(new Blob([JSON.stringify(json) + '\n'], { type: 'application/json' }), `seg-grad-cam-${e.layer.name}-class${e.classIndex}.json`);
}

function viewState(): ViewState {
  const e = state.explanation;
  const r = e?.region;
  const classParam = state.classChoice ?? (r?.kind === 'class' ? e?.classIndex : undefined);
  return {
    model: state.model?.key ?? undefined,
    labels: state.model?.key?.startsWith('url:') && state.model.source.kind === 'url' ? state.model.source.labelsUrl : undefined,
    image: state.imageEntry?.key ?? undefined,
    layer: state.info && layer() !== state.info.bottleneck ? layer() : undefined,
    class: classParam,
    region: r,
    method: el.methodSelect.value !== 'seg-grad-cam' ? el.methodSelect.value : undefined,
    score: el.scoreSelect.value !== 'logits' ? (el.scoreSelect.value as 'probability') : undefined,
    colormap: colormap() !== 'turbo' ? colormap() : undefined,
    opacity: opacity() !== 0.55 ? opacity() : undefined,
    backend: el.backendSelect.value !== 'auto' ? el.backendSelect.value : undefined,
  };
}

function updateUrl(): void {
  const q = encodeState(viewState());
  const url = `${location.pathname}${q ? `?${q}` : ''}`;
  if (url !== `${location.pathname}${location.search}`) history.replaceState(null, '', url);
}

// ---------------------------------------------------------------- opening things

function modelFromKey(key: string, labelsUrl?: string): ModelEntry | null {
  if (key.startsWith('url:')) {
    const url = key.slice(4);
    return { key, name: url.split('/').slice(-2).join('/'), source: { kind: 'url', url, labelsUrl } };
  }
  const m = state.catalog.models.find((c) => c.id === key);
  return m ? catalogEntry(m) : null;
}

function imageFromKey(key: string | null): ImageSource | null {
  if (key === null) return null;
  const url = key.startsWith('url:') ? key.slice(4) : state.catalog.samples.some((s) => s.url === key) ? key : null;
  if (!url) return null;
  return { load: () => fetchImage(url), entry: { key, name: url.split('/').pop() ?? url } };
}

/** A sample suited to the current model. */
function defaultImageKey(): string | null {
  const m = state.catalog.models.find((c) => c.id === state.model?.key);
  return m?.samples[0] ?? state.catalog.samples[0]?.url ?? null;
}

/** An image the user chose (a file, dropped or picked). */
const fileImage = (f: File): ImageSource => ({ load: () => decodeImage(f, f.name), entry: { key: null, name: f.name } });

/**
 * Opens a model, then `image`, or else keeps the current image (or, with none, opens the model's
 * first sample); the image is predicted once. When `image` cannot be read, the current one stays.
 */
async function openModelAndImage(entry: ModelEntry, image?: ImageSource | null): Promise<boolean> {
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
async function readLabels(file: File): Promise<Labels | null> {
  try {
    return parseLabels(await file.text());
  } catch (err) {
    showError(new Error(`${file.name}: ${(err as Error).message}`));
    return null;
  }
}

const isLabels = (f: File) => /\.(txt|labels)$/i.test(f.name) || /labels.*\.json$/i.test(f.name);
const isImage = (f: File) => /^image\//.test(f.type) || /\.(png|jpe?g|gif|webp|bmp)$/i.test(f.name);

async function openFiles(files: File[]): Promise<void> {
  const images = files.filter(isImage);
  const modelFiles = files.filter((f) => !isImage(f) && !isLabels(f));
  const labelFiles = files.filter(isLabels);
  const image = images[0] ? fileImage(images[0]) : null;
  if (modelFiles.length > 0) {
    const labels = labelFiles[0] ? await readLabels(labelFiles[0]) : undefined;
    if (labels === null) return;
    const named = modelFiles.find((f) => /\.(json|onnx)$/i.test(f.name));
    const entry: ModelEntry = { key: null, name: named?.name ?? 'your model', source: { kind: 'files', files: modelFiles }, labels };
    await openModelAndImage(entry, image);
    return;
  }
  if (labelFiles[0]) await applyLabelsFile(labelFiles[0]);
  if (image) await openImage(image);
}

async function applyLabelsFile(file: File): Promise<void> {
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
  renderPrediction();
  if (state.explanation) showExplanation(state.explanation);
}

// ---------------------------------------------------------------- controls

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
  });
}
el.classSelect.addEventListener('change', () => {
  state.classChoice = el.classSelect.value === 'auto' ? null : Number(el.classSelect.value);
  if (state.explanation) void askAgain(state.explanation, state.classChoice ?? undefined);
});
el.classForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void ask({ kind: 'class' }, state.classChoice ?? defaultRegionClass());
});
$('whole-image').addEventListener('click', () => void ask({ kind: 'whole' }));
$('clear-region').addEventListener('click', () => {
  state.region = null;
  state.explanation = null;
  renderOverlay();
  drawMarks();
  updateUrl();
});
for (const s of [el.layerSelect, el.methodSelect, el.scoreSelect]) {
  s.addEventListener('change', () => {
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

/** A new backend: a new worker, then the same model, image and question again. */
async function switchBackend(choice: BackendChoice): Promise<void> {
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

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    for (const stage of Object.values(stages)) if (stage.shown) stage.show(stage.shown);
    drawMarks();
  }, 100);
});

// Drag and drop, paste.
let dragDepth = 0;
window.addEventListener('dragenter', (ev) => {
  if (!ev.dataTransfer?.types.includes('Files')) return;
  dragDepth++;
  el.dropHint.hidden = false;
});
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) el.dropHint.hidden = true;
});
window.addEventListener('dragover', (ev) => ev.preventDefault());
window.addEventListener('drop', (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  el.dropHint.hidden = true;
  const files = [...(ev.dataTransfer?.files ?? [])];
  if (files.length > 0) void openFiles(files);
});
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
  const entry =
    (view.model ? modelFromKey(view.model, view.labels) : null) ?? (state.catalog.models[0] ? catalogEntry(state.catalog.models[0]) : null);
  if (view.model && !modelFromKey(view.model, view.labels))
    showError(new Error(`the link names a model this page does not have: ${view.model}`));
  if (!entry) {
    idleText = 'no bundled model: open your own';
    renderStatus();
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
    selectLayer(view.layer);
    if (view.class !== undefined && view.region?.kind !== 'class') {
      state.classChoice = view.class;
      el.classSelect.value = String(view.class);
    }
    if (view.region) await ask(view.region, view.region.kind === 'class' ? view.class : undefined);
  }
  idleText = 'ready';
  renderStatus();
  hook.ready = true;
}

void boot();
