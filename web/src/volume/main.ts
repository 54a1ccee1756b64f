/**
 * The volume page (web/volume.html): open a 3-D model — ONNX, or a TF.js LayersModel (model.json
 * and weights) — and a volume — NIfTI or PNG slices — (file picker, drop, or ?model=…&volume=…
 * URLs; the default sample otherwise), three orthogonal slice views with a slider each, and
 * questions asked by clicking: a voxel, a box dragged on a slice over a chosen depth, the 3-D
 * object or the class under the click, with a CAM method of the library's volume list. The worker (./worker.ts) predicts once per model and volume (sliding
 * windows when the volume is larger than the model's input, with patch progress) and answers each
 * question with the library's code; Cancel stops a running prediction or question between two
 * patch runs. The heatmap is drawn on every view with the crosshair at the clicked voxel.
 */
import { colormapLut } from '../../../src/render/colormap.js';
import { classColor, defaultPalette } from '../../../src/render/palette.js';
import { toOutputVoxel, type Connectivity } from '../../../src/volume/regions.js';
import { ORT_WASM_DIR } from '../protocol.js';
import { DEFAULT_VOLUME_SAMPLE, sampleUrl } from './defaults.js';
import { hook, type Timing } from './hook.js';
import type {
  Dims3,
  ExplainVolumeParams,
  Intensity,
  VolumeAnswer,
  VolumeInfo,
  VolumeModelInfo,
  VolumePrediction,
  VolumeProgress,
  VolumeRegion,
  VolumeReply,
  VolumeRequest,
  LayersFiles,
  SliceFiles,
  VolumeSource,
  Voxel,
} from './protocol.js';
import { boxFromDrag, toVolumeGrid, VIEWS, voxelAt, type Cell, type View } from './slices.js';
import { SlicePanel } from './views.js';
import { acceptDroppedFiles } from '../ui/file-drop.js';
import { WorkerClient } from '../worker-client.js';
import { applyOptionParams, optionFieldIds, optionParams, parseOverlap, readMethodOptions, syncOptionFields } from './options.js';
import { StatusLine } from './status.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  statusText: $('status-text'),
  spinner: $('status-spinner'),
  error: $('error'),
  errorText: $('error-text'),
  files: $<HTMLInputElement>('vol-files'),
  intensity: $<HTMLSelectElement>('vol-intensity'),
  patch: $<HTMLInputElement>('vol-patch'),
  overlap: $<HTMLInputElement>('vol-overlap'),
  names: $('vol-names'),
  depth: $<HTMLInputElement>('vol-depth'),
  connectivity: $<HTMLSelectElement>('vol-connectivity'),
  classSelect: $<HTMLSelectElement>('vol-class'),
  layerSelect: $<HTMLSelectElement>('vol-layer'),
  methodSelect: $<HTMLSelectElement>('vol-method'),
  progress: $<HTMLProgressElement>('vol-progress'),
  cancel: $<HTMLButtonElement>('vol-cancel'),
  opacity: $<HTMLInputElement>('vol-opacity'),
  labels: $<HTMLInputElement>('vol-labels'),
  answer: $('vol-answer'),
  timing: $('vol-timing'),
  views: $('vol-views'),
  dropHint: $('drop-hint'),
};

// ---------------------------------------------------------------- worker

const worker = new WorkerClient<VolumeRequest, VolumeReply, VolumeProgress>(
  () => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
  'the volume worker',
);

const status = new StatusLine({ text: el.statusText, spinner: el.spinner, progress: el.progress });

/** What the status line says while a request runs. */
const LABELS: Record<VolumeRequest['type'], string | null> = {
  init: 'starting',
  'load-model': 'loading the model',
  'load-volume': 'reading the volume',
  predict: 'predicting',
  explain: 'explaining',
  'set-patch': 'setting the patch',
  'set-overlap': 'setting the overlap',
  cancel: null,
};

/** Predictions and questions in flight (what Cancel can stop). */
let stoppable = 0;
function countStoppable(delta: number): void {
  stoppable += delta;
  el.cancel.hidden = stoppable === 0;
}

/** One request to the worker, its progress on the status line; a prediction or question shows Cancel while it runs. */
async function call(request: VolumeRequest, transfer: Transferable[] = []): Promise<VolumeReply> {
  const counted = request.type === 'predict' || request.type === 'explain';
  const label = LABELS[request.type];
  const task = label === null ? null : status.begin(label);
  if (counted) countStoppable(+1);
  const onProgress = (p: VolumeProgress) => {
    task?.update(p.text, p.total ? (p.done ?? 0) / p.total : undefined);
    hook.progress.push(p.text);
    if (hook.progress.length > 500) hook.progress.shift();
  };
  try {
    return await worker.call(request, { onProgress, transfer });
  } finally {
    if (counted) countStoppable(-1);
    task?.end();
  }
}

// ---------------------------------------------------------------- state

const state = {
  model: null as VolumeModelInfo | null,
  modelUrl: null as string | null,
  volume: null as VolumeInfo | null,
  volumeUrl: null as string | null,
  range: [0, 1] as [number, number],
  prediction: null as VolumePrediction | null,
  /** The prediction on the volume grid (for the class under a click and the label colours). */
  labels: null as Int32Array | null,
  voxel: null as Voxel | null,
  region: null as VolumeRegion | null,
  answer: null as VolumeAnswer | null,
  /** M on the volume grid. */
  mask: null as Float32Array | null,
  /** Questions asked; an answer to an older one is not drawn. */
  asked: 0,
  /** The region of the answer on the screen (a cancelled question leaves it). */
  shownRegion: null as VolumeRegion | null,
  /** The sliding windows' overlap the worker has. */
  overlap: 0.5,
  /** The volume methods with a negative map (from the worker). */
  negativeMethods: [] as string[],
};

const panels = {} as Record<View, SlicePanel>;
for (const view of VIEWS)
  panels[view] = new SlicePanel(view, $(`view-${view}`), {
    click: (_v, voxel) => void onVoxel(voxel),
    drag: (v, index, a, b) => void onDrag(v, index, a, b),
    slice: () => undefined,
  });

// ---------------------------------------------------------------- status

function idle(text = 'ready'): void {
  status.idle(text);
}
function showError(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  el.errorText.textContent = message;
  el.error.hidden = false;
  hook.errors++;
  hook.lastError = message;
  idle('error');
}
$('error-close').addEventListener('click', () => (el.error.hidden = true));

const className = (c: number) => `class ${c}`;

// ---------------------------------------------------------------- drawing

const palette = defaultPalette();
const classColors = Array.from({ length: 32 }, (_, c) => classColor(palette, c));
const lut = colormapLut('turbo');

function redraw(): void {
  const v = state.volume;
  if (!v) return;
  const heat = state.answer?.heat ?? null;
  let max = 0;
  if (heat) for (const x of heat) if (x > max) max = x;
  for (const view of VIEWS)
    panels[view].setScene({
      dims: v.dims,
      voxel: state.voxel,
      mask: state.mask,
      layers: {
        volume: v.data,
        range: state.range,
        heat: heat ? { data: heat, max } : null,
        opacity: Number(el.opacity.value),
        lut,
        labels: el.labels.checked && state.labels ? { data: state.labels, colors: classColors } : null,
      },
    });
}

/** Grey levels from the 1st to the 99th percentile (a few bright voxels do not darken the rest). */
function greyRange(data: Float32Array): [number, number] {
  const s = Float32Array.from(data).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))];
  const lo = at(0.01);
  const hi = at(0.99);
  return hi > lo ? [lo, hi] : [s[0], s[s.length - 1]];
}

// ---------------------------------------------------------------- loading

function fillModelControls(info: VolumeModelInfo): void {
  el.patch.disabled = !info.freeSizes;
  if (!info.freeSizes) el.patch.value = '';
  el.patch.placeholder = info.freeSizes ? 'whole volume' : info.inputDims.slice(2).join(',');
  el.layerSelect.replaceChildren();
  for (const l of info.layers) {
    const label = `${l.name} · ${l.type} [${l.shape.slice(1).join('×')}]${l.name === info.bottleneck ? ' · bottleneck' : ''}`;
    el.layerSelect.add(new Option(label, l.name, false, l.name === info.bottleneck));
  }
  el.classSelect.replaceChildren(new Option('auto', 'auto'));
  for (let c = 0; c < info.classCount; c++) el.classSelect.add(new Option(className(c), String(c)));
}

/** The method list is the library's (VOLUME_METHODS, sent by the worker); the option fields follow the method. */
function fillMethods(methods: string[], negativeMethods: string[], wanted: string | null): void {
  el.methodSelect.replaceChildren(...methods.map((m) => new Option(m, m, false, m === 'seg-grad-cam')));
  if (wanted && methods.includes(wanted)) el.methodSelect.value = wanted;
  state.negativeMethods = negativeMethods;
  syncOptionFields(el.methodSelect.value, negativeMethods);
}

async function loadModel(source: VolumeSource | LayersFiles): Promise<void> {
  const transfer =
    source.kind === 'bytes'
      ? [source.bytes.buffer as ArrayBuffer]
      : source.kind === 'layers'
        ? source.files.map((f) => f.bytes.buffer as ArrayBuffer)
        : [];
  const reply = await call({ type: 'load-model', source }, transfer);
  if (reply.type !== 'load-model') return;
  state.model = reply.info;
  state.modelUrl = source.kind === 'url' ? source.url : null;
  state.prediction = null;
  fillModelControls(reply.info);
  clearAnswer();
}

async function loadVolume(source: VolumeSource | SliceFiles | { kind: 'current' }): Promise<void> {
  const intensity = el.intensity.value as Intensity;
  const transfer =
    source.kind === 'bytes'
      ? [source.bytes.buffer as ArrayBuffer]
      : source.kind === 'slices'
        ? source.files.map((f) => f.bytes.buffer as ArrayBuffer)
        : [];
  const reply = await call({ type: 'load-volume', source, intensity }, transfer);
  if (reply.type !== 'load-volume') return;
  state.volume = reply.info;
  hook.volume = reply.info.data;
  if (source.kind !== 'current') state.volumeUrl = source.kind === 'url' ? source.url : null;
  state.range = greyRange(reply.info.data);
  state.prediction = null;
  state.labels = null;
  for (const view of VIEWS) panels[view].reset(reply.info.dims);
  clearAnswer();
}

/** The forward pass (once per model and volume: the worker caches it). */
async function predict(): Promise<void> {
  if (!state.model || !state.volume) return;
  const reply = await call({ type: 'predict' });
  if (reply.type === 'cancelled') {
    el.timing.textContent = 'prediction cancelled: the next question predicts again';
    return;
  }
  if (reply.type !== 'predict') return;
  const p = reply.prediction;
  if (p.model) {
    state.model = { ...p.model, loadMs: state.model.loadMs };
    fillModelControls(state.model);
  }
  state.prediction = p;
  state.labels = toVolumeGrid(p.labels, p.dims, state.volume.dims);
  hook.predictions++;
  const shares = p.counts.map((n, c) => `${className(c)} ${((100 * n) / p.labels.length).toFixed(1)} %`).join(', ');
  const runs = p.patches > 1 ? `, ${p.patches} sliding-window patches` : '';
  el.timing.textContent = `prediction ${p.ms.toFixed(0)} ms (once per volume${runs}): ${shares}`;
}

function names(): void {
  const v = state.volume;
  el.names.textContent = [
    state.model ? `model ${state.model.name}` : 'no model',
    v ? `volume ${v.name} · ${v.dims.join('×')} (D×H×W) · ${v.spacing.map((s) => +s.toFixed(3)).join('×')} mm` : 'no volume',
  ].join(' · ');
}

function clearAnswer(): void {
  state.answer = null;
  state.mask = null;
  state.region = null;
  state.shownRegion = null;
  names();
  el.timing.textContent = '';
  el.answer.textContent = state.model && state.volume ? 'Click a voxel on any view.' : 'Open a 3-D model and a volume.';
  redraw();
}

async function openFiles(files: File[]): Promise<void> {
  try {
    const model = files.find((f) => /\.onnx$/i.test(f.name));
    // A TF.js LayersModel: its model.json and every other file but volumes (its weight files).
    const json = files.find((f) => /\.json$/i.test(f.name));
    const vol = files.find((f) => /\.nii(\.gz)?$/i.test(f.name));
    const slices = files.filter((f) => /\.png$/i.test(f.name));
    if (!model && !json && !vol && slices.length === 0)
      throw new Error(
        `${files.map((f) => f.name).join(', ')}: not a .onnx model, a TF.js model.json (with its weights), a .nii / .nii.gz volume or .png slices`,
      );
    if (model && json) throw new Error('open either an ONNX model or a TF.js model.json, not both');
    if (json) {
      const parts = files.filter((f) => f === json || !/\.(nii|gz|png|onnx)$/i.test(f.name));
      const read = await Promise.all(parts.map(async (f) => ({ bytes: new Uint8Array(await f.arrayBuffer()), name: f.name })));
      await loadModel({ kind: 'layers', files: read });
    }
    if (vol && slices.length > 0) throw new Error('open either a NIfTI volume or PNG slices, not both');
    if (model) await loadModel({ kind: 'bytes', bytes: new Uint8Array(await model.arrayBuffer()), name: model.name });
    if (vol) await loadVolume({ kind: 'bytes', bytes: new Uint8Array(await vol.arrayBuffer()), name: vol.name });
    if (slices.length > 0) {
      const read = await Promise.all(slices.map(async (f) => ({ bytes: new Uint8Array(await f.arrayBuffer()), name: f.name })));
      await loadVolume({ kind: 'slices', files: read });
    }
    await predict();
    updateUrl();
    idle(state.prediction ? 'ready' : 'cancelled');
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------- questions

const tool = () => document.querySelector<HTMLInputElement>('input[name="vtool"]:checked')?.value ?? 'voxel';
const fixedClass = () => (el.classSelect.value === 'auto' ? undefined : Number(el.classSelect.value));

/** The class predicted at a voxel (the logits cell containing it). */
function classAt(v: Voxel): number | undefined {
  const p = state.prediction;
  const vol = state.volume;
  if (!p || !vol) return undefined;
  const o = toOutputVoxel(v, vol.dims, p.dims);
  return p.labels[(o[0] * p.dims[1] + o[1]) * p.dims[2] + o[2]];
}

async function onVoxel(voxel: Voxel): Promise<void> {
  state.voxel = voxel;
  for (const view of VIEWS) panels[view].follow(voxel);
  const t = tool();
  if (t === 'class') {
    const c = fixedClass() ?? classAt(voxel);
    await ask({ kind: 'class' }, c);
  } else if (t === 'component') {
    await ask({ kind: 'component', voxel, connectivity: Number(el.connectivity.value) as Connectivity }, fixedClass() ?? classAt(voxel));
  } else await ask({ kind: 'voxel', voxel }, fixedClass());
}

async function onDrag(view: View, index: number, a: Cell, b: Cell): Promise<void> {
  const v = state.volume;
  if (!v) return;
  if (tool() !== 'box') {
    // A drag with another tool is a click where it ended.
    return onVoxel(voxelAt(view, v.dims, index, b));
  }
  const box = boxFromDrag(view, v.dims, index, a, b, Number(el.depth.value));
  state.voxel = [Math.round((box[0] + box[3]) / 2), Math.round((box[1] + box[4]) / 2), Math.round((box[2] + box[5]) / 2)];
  await ask({ kind: 'box', box }, fixedClass());
}

async function ask(region: VolumeRegion, classId?: number): Promise<void> {
  if (!state.model || !state.volume) {
    showError(new Error('open a 3-D model and a volume first'));
    return;
  }
  const n = ++state.asked;
  const t0 = performance.now();
  state.region = region;
  el.views.classList.add('stale');
  redraw();
  try {
    const method = el.methodSelect.value;
    const params: ExplainVolumeParams = {
      region,
      classId,
      layer: el.layerSelect.value || undefined,
      method,
      methodOptions: readMethodOptions(method),
    };
    if (!state.prediction) await predict();
    if (n !== state.asked) return;
    const reply = await call({ type: 'explain', params });
    if (reply.type !== 'explain' || n !== state.asked) return;
    const a = reply.answer;
    state.answer = a;
    const vol = state.volume;
    state.mask = toVolumeGrid(a.mask, a.maskDims, vol.dims);
    el.views.classList.remove('stale');
    redraw();
    const wallMs = performance.now() - t0;
    const timing: Timing = { ms: a.ms, wallMs, cached: a.cached, layer: a.layer };
    hook.record(a, region, timing);
    state.shownRegion = region;
    el.answer.textContent = `${describe(region)} → ${className(a.classId)}: ${a.method}, S = ${a.score.toPrecision(5)} at ${a.layer} (grid ${a.layerDims.join('×')})`;
    const runs = a.sliding
      ? `${a.sliding.touched} of ${a.sliding.total} sliding-window patches run forward + backward (${a.sliding.skipped} do not touch M)`
      : 'one fused forward + backward run';
    const more = a.forwardRuns > 0 ? ` + ${a.forwardRuns} forward runs` : '';
    el.timing.textContent = `${wallMs.toFixed(0)} ms click to heatmap (worker ${a.ms.toFixed(0)} ms: ${runs}${more}${a.cached ? '; prediction cached' : ''})`;
    updateUrl();
    idle();
  } catch (err) {
    if (n === state.asked) el.views.classList.remove('stale');
    showError(err);
  }
}

/** The shown question again (after a change of class, layer, method, option or overlap). */
function reask(): Promise<void> {
  const r = state.region;
  if (!r) return Promise.resolve();
  return ask(r, r.kind === 'class' ? (fixedClass() ?? state.answer?.classId) : fixedClass());
}

function describe(r: VolumeRegion): string {
  switch (r.kind) {
    case 'voxel':
      return `voxel (d, h, w) = (${r.voxel.join(', ')})`;
    case 'box':
      return `box (${r.box.slice(0, 3).join(', ')}) – (${r.box.slice(3).join(', ')})`;
    case 'component':
      return `object at (${r.voxel.join(', ')})`;
    case 'class':
      return 'every voxel of the class';
    default:
      return r.kind;
  }
}

/** The Patch field: "d,h,w" or empty (the whole volume in one run). */
function parsePatch(text: string): Dims3 | null {
  const t = text.trim();
  if (!t) return null;
  const n = t.split(/[,x×\s]+/).map(Number);
  if (n.length !== 3 || !n.every((x) => Number.isInteger(x) && x > 0))
    throw new Error(`patch "${t}": give three positive whole numbers d,h,w (or nothing for the whole volume)`);
  return n as Dims3;
}

/** A new patch for a model with free input sizes: the worker rebuilds the model at it and predicts again. */
async function applyPatch(): Promise<void> {
  try {
    const patch = parsePatch(el.patch.value);
    await call({ type: 'set-patch', patch });
    state.prediction = null;
    state.labels = null;
    clearAnswer();
    await predict();
    updateUrl();
    idle(state.prediction ? 'ready' : 'cancelled');
  } catch (err) {
    showError(err);
  }
}

/**
 * A new overlap for the sliding windows: the worker predicts the volume again with it and the shown
 * question is asked again. A value out of [0.5, 1) is refused with a message, the old one kept.
 */
async function applyOverlap(): Promise<void> {
  try {
    const overlap = parseOverlap(el.overlap.value);
    if (overlap === state.overlap) return;
    await call({ type: 'set-overlap', overlap });
    state.overlap = overlap;
    state.prediction = null;
    state.labels = null;
    if (state.region) await reask();
    else if (state.model && state.volume) {
      await predict();
      updateUrl();
      idle(state.prediction ? 'ready' : 'cancelled');
    }
  } catch (err) {
    el.overlap.value = String(state.overlap);
    showError(err);
  }
}

/**
 * Cancel: the worker stops the running prediction or question before its next patch run; the
 * answer on the screen stays (with its region) and the status says it was cancelled.
 */
async function cancel(): Promise<void> {
  state.asked++;
  hook.cancelled++;
  await call({ type: 'cancel' });
  state.region = state.shownRegion;
  el.views.classList.remove('stale');
  redraw();
  el.timing.textContent = state.answer ? 'cancelled: the heatmap is the previous answer' : 'cancelled';
  idle('cancelled');
}

// ---------------------------------------------------------------- URL

function updateUrl(): void {
  const q = new URLSearchParams();
  if (state.modelUrl) q.set('model', state.modelUrl);
  if (state.volumeUrl) q.set('volume', state.volumeUrl);
  if (el.intensity.value !== 'none') q.set('intensity', el.intensity.value);
  if (state.region?.kind === 'voxel' && state.voxel) q.set('voxel', state.voxel.join(','));
  if (state.answer && state.model && state.answer.layer !== state.model.bottleneck) q.set('layer', state.answer.layer);
  if (el.methodSelect.value !== 'seg-grad-cam') q.set('method', el.methodSelect.value);
  if (el.patch.value.trim()) q.set('patch', el.patch.value.trim());
  if (state.overlap !== 0.5) q.set('overlap', String(state.overlap));
  optionParams(el.methodSelect.value, q);
  history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
}

// ---------------------------------------------------------------- controls

el.files.addEventListener('change', () => {
  const files = [...(el.files.files ?? [])];
  el.files.value = '';
  if (files.length > 0) void openFiles(files);
});
el.methodSelect.addEventListener('change', () => syncOptionFields(el.methodSelect.value, state.negativeMethods));
for (const s of [el.layerSelect, el.classSelect, el.methodSelect, ...optionFieldIds().map((id) => $<HTMLInputElement>(id))])
  s.addEventListener('change', () => void reask());
el.overlap.addEventListener('change', () => void applyOverlap());
el.intensity.addEventListener('change', () => {
  // The worker keeps the volume as read: the new option applies to it.
  void loadVolume({ kind: 'current' })
    .then(predict)
    .then(() => {
      updateUrl();
      idle();
    }, showError);
});
el.patch.addEventListener('change', () => void applyPatch());
el.opacity.addEventListener('input', redraw);
el.cancel.addEventListener('click', () => void cancel());
el.labels.addEventListener('change', redraw);

acceptDroppedFiles(el.dropHint, (files) => void openFiles(files));

// ---------------------------------------------------------------- start

const absolute = (url: string) => new URL(url, location.href).href;

async function boot(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const intensity = q.get('intensity');
  if (intensity && [...el.intensity.options].some((o) => o.value === intensity)) el.intensity.value = intensity;
  try {
    const init = await call({ type: 'init', ortWasmBase: absolute(ORT_WASM_DIR) });
    applyOptionParams(q);
    if (init.type === 'init') fillMethods(init.methods, init.negativeMethods, q.get('method'));
    const patch = q.get('patch');
    if (patch) {
      el.patch.value = patch;
      await call({ type: 'set-patch', patch: parsePatch(patch) });
    }
    const overlap = q.get('overlap');
    if (overlap) {
      el.overlap.value = overlap;
      await applyOverlap();
    }
    await loadModel({ kind: 'url', url: absolute(q.get('model') ?? sampleUrl(DEFAULT_VOLUME_SAMPLE.model)) });
    await loadVolume({ kind: 'url', url: absolute(q.get('volume') ?? sampleUrl(DEFAULT_VOLUME_SAMPLE.volume)) });
    await predict();
    const layer = q.get('layer');
    if (layer && [...el.layerSelect.options].some((o) => o.value === layer)) el.layerSelect.value = layer;
    const voxel = q.get('voxel')?.split(',').map(Number);
    if (voxel?.length === 3 && voxel.every(Number.isInteger)) await onVoxel(voxel as Voxel);
    idle();
  } catch (err) {
    showError(err);
  }
  hook.ready = true;
}

hook.state = () => ({
  model: state.model,
  volumeDims: state.volume?.dims ?? null,
  voxel: state.voxel,
  region: state.region,
  layer: el.layerSelect.value,
  slices: VIEWS.map((v) => panels[v].index) as Dims3,
});

void boot();
