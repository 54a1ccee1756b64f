/**
 * The volume worker: holds the 3-D ONNX model (the library's OnnxVolumeModel on onnxruntime-web),
 * the volume and its prediction, so that the forward pass runs once per model and volume (all the
 * sliding-window patches of a volume larger than the model's input) and every question (voxel,
 * box, class, object; class; layer; method) runs the library's code (./explain-run.ts): one fused
 * gradient run, or one per patch touching M. Cancel and a newer question stop a run between two
 * patch runs. The page never blocks on inference.
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../../src/errors.js';
import { decodeNifti } from '../../../src/io/nifti.js';
import { defaultVolumeLayer } from '../../../src/volume/explain.js';
import { clipPercentiles, zScore } from '../../../src/volume/intensity.js';
import { VOLUME_METHODS } from '../../../src/volume/methods.js';
import { hasNegativeMap } from '../../../src/methods/index.js';
import { openVolumeModel, volumeModelInputDims } from '../../../src/volume/explain-grid.js';
import type { OnnxVolumeModel } from '../../../src/volume/onnx-volume.js';
import { ortWeb } from '../onnx-model.js';
import { isLayersUrl, loadLayersVolumeModel } from './layers-volume.js';
import { explainQuestion, predictVolume, slides, stoppable, Stopped, type OnPatch, type Prediction } from './explain-run.js';
import { stackPngSlices } from './png-slices.js';
import type {
  Dims3,
  ExplainVolumeParams,
  Intensity,
  SliceFiles,
  VolumeAnswer,
  VolumeInfo,
  VolumeModelInfo,
  VolumePrediction,
  VolumeReply,
  VolumeRequest,
  VolumeSource,
  VolumeWorkerMessage,
  VolumeWorkerRequest,
} from './protocol.js';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<VolumeWorkerRequest>) => void) | null;
}
const scope = self as unknown as WorkerScope;

let ortWasmBase = '';
/** The ONNX model's bytes (rebuilt when a volume gives free input sizes); null for a TF.js model (fixed sizes). */
let modelBytes: { bytes: Uint8Array; name: string } | null = null;
let model: OnnxVolumeModel | null = null;
/** The volume sizes and patch the ONNX model was built for. */
let modelBuiltFor: string | null = null;
/** Whether the ONNX model's input sizes are free. */
let modelFree = false;
/** The patch for a model with free input sizes (null: the volume's size). */
let patch: Dims3 | null = null;
/** The overlap of neighbouring sliding windows (the library's default until the page sets it). */
let overlap = 0.5;
const buildKey = (dims: Dims3) => `${dims.join('x')}/${patch?.join('x') ?? ''}`;
let volume: { data: Float32Array; dims: Dims3 } | null = null;
/** The volume as read (before the intensity option). */
let stored: VolumeInfo | null = null;
/** The prediction of the current model on the current volume (dropped when either changes). */
let cache: (Prediction & { model: OnnxVolumeModel; data: Float32Array }) | null = null;
/** The newest explain request: older ones are answered 'superseded'. */
let latestExplain = -1;
/** Cancels so far: a prediction or question started before the last Cancel stops. */
let cancels = 0;

const queue: Array<VolumeWorkerRequest & { cancels: number }> = [];
let running = false;

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.request.type === 'explain') latestExplain = msg.id;
  if (msg.request.type === 'cancel') {
    cancels++;
    send({ id: msg.id, ok: true, reply: { type: 'cancel' } });
    return;
  }
  queue.push({ ...msg, cancels });
  void pump();
};

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length > 0) {
      const msg = queue.shift() as VolumeWorkerRequest & { cancels: number };
      const type = msg.request.type;
      if ((type === 'explain' || type === 'predict') && msg.cancels !== cancels) {
        send({ id: msg.id, ok: true, reply: { type: 'cancelled' } });
        continue;
      }
      if (type === 'explain' && msg.id !== latestExplain) {
        send({ id: msg.id, ok: true, reply: { type: 'superseded' } });
        continue;
      }
      try {
        const reply = await handle(msg.id, msg.request, msg.cancels);
        send({ id: msg.id, ok: true, reply }, transfers(reply));
      } catch (err) {
        if (err instanceof Stopped) {
          send({ id: msg.id, ok: true, reply: { type: err.why } });
          continue;
        }
        const typed = err instanceof SegGradCamError;
        const message = err instanceof Error ? err.message : String(err);
        send({ id: msg.id, ok: false, error: { message: typed ? message : message.split('\n')[0], code: typed ? err.code : undefined } });
      }
    }
  } finally {
    running = false;
  }
}

function send(message: VolumeWorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

/** Stops a prediction after a Cancel sent since it was asked (`since`: the cancels then). */
const cancelCheck = (since: number) => () => {
  if (cancels !== since) throw new Stopped('cancelled');
};
/** Stops a question after a Cancel or when a newer question came. */
const questionCheck = (id: number, since: number) => () => {
  cancelCheck(since)();
  if (latestExplain !== id) throw new Stopped('superseded');
};
/** Patch progress as the page shows it. */
const patchProgress =
  (id: number): OnPatch =>
  (done, total, stage) =>
    send({ id, progress: { text: `${stage === 'predict' ? 'predicting' : 'explaining'}: patch ${done} of ${total}`, done, total } });

async function handle(id: number, req: VolumeRequest, since: number): Promise<VolumeReply> {
  switch (req.type) {
    case 'init':
      ortWasmBase = req.ortWasmBase;
      // The non-Seg-Grad-CAM methods compute their maps in TF.js: its cpu kernels, as in Node.
      await tf.setBackend('cpu');
      return { type: 'init', methods: [...VOLUME_METHODS], negativeMethods: VOLUME_METHODS.filter(hasNegativeMap) };
    case 'load-model': {
      const t0 = performance.now();
      send({ id, progress: { text: 'loading the model' } });
      const src = req.source;
      if (src.kind === 'layers' || (src.kind === 'url' && isLayersUrl(src.url))) {
        const built = await loadLayersVolumeModel(src);
        await disposeModel();
        modelBytes = null;
        modelFree = false;
        model = built.model;
        modelBuiltFor = null;
        return { type: 'load-model', info: modelInfo(built.name, built.model, performance.now() - t0) };
      }
      const next = await readSource(src);
      const built = await buildModel(next, volume?.dims ?? null);
      await disposeModel();
      modelBytes = next;
      model = built;
      modelBuiltFor = built && volume ? buildKey(volume.dims) : null;
      return { type: 'load-model', info: modelInfo(next.name, built, performance.now() - t0) };
    }
    case 'load-volume': {
      send({ id, progress: { text: 'reading the volume' } });
      const read = req.source.kind === 'current' ? stored : await readVolume(req.source);
      if (!read) throw new SegGradCamError('no volume is loaded', 'image');
      stored = read;
      const data = preprocess(read.data, req.intensity);
      volume = { data, dims: read.dims };
      cache = null;
      return { type: 'load-volume', info: { ...read, data: data.slice() } };
    }
    case 'predict':
      return { type: 'predict', prediction: await predict(id, since) };
    case 'explain': {
      const answer = await explain(id, req.params, since);
      // A newer question arrived during the last run: this answer is stale.
      if (latestExplain !== id) return { type: 'superseded' };
      return { type: 'explain', answer };
    }
    case 'set-patch':
      patch = req.patch;
      return { type: 'set-patch' };
    case 'set-overlap':
      // The library's explain-volume takes 0.5 ≤ f < 1 (the page checks it first, with the same words).
      if (!(req.overlap >= 0.5 && req.overlap < 1)) throw new SegGradCamError(`overlap ${req.overlap}: give a number in [0.5, 1)`, 'usage');
      if (req.overlap !== overlap) cache = null;
      overlap = req.overlap;
      return { type: 'set-overlap' };
    case 'cancel':
      return { type: 'cancel' };
  }
}

function preprocess(data: Float32Array, intensity: Intensity): Float32Array {
  if (intensity === 'zscore') return zScore(data);
  if (intensity === 'clip-zscore') return zScore(clipPercentiles(data, { low: 0.5, high: 99.5 }));
  return data;
}

/** A NIfTI file (its first frame) or PNG slices, as [D, H, W]. */
async function readVolume(source: VolumeSource | SliceFiles): Promise<VolumeInfo> {
  if (source.kind === 'slices') {
    const s = await stackPngSlices(source.files);
    const name = s.names.length === 1 ? s.names[0] : `${s.names.length} PNG slices ${s.names[0]} … ${s.names[s.names.length - 1]}`;
    return { name, dims: s.dims, data: s.data, spacing: [1, 1, 1], affineSource: 'none (PNG slices)' };
  }
  const src = await readSource(source);
  const nifti = await decodeNifti(src.bytes);
  const dims: Dims3 = [nifti.dims[2], nifti.dims[1], nifti.dims[0]];
  return { name: src.name, dims, data: nifti.data, spacing: nifti.spacing, affineSource: nifti.affineSource };
}

async function readSource(source: VolumeSource): Promise<{ bytes: Uint8Array; name: string }> {
  if (source.kind === 'bytes') return { bytes: source.bytes, name: source.name };
  const name = decodeURIComponent(source.url.split(/[?#]/)[0].split('/').pop() ?? source.url);
  let res: Response;
  try {
    res = await fetch(source.url);
  } catch (err) {
    throw new SegGradCamError(`${name}: cannot fetch it (${err instanceof Error ? err.message : String(err)})`, 'file');
  }
  if (!res.ok) throw new SegGradCamError(`${name}: cannot fetch it (HTTP ${res.status})`, 'file');
  return { bytes: new Uint8Array(await res.arrayBuffer()), name };
}

/**
 * The volume model of the bytes, as the CLI opens it (the library's openVolumeModel): fixed input
 * sizes are the patch; free sizes take the page's patch, else the volume's (one run). A model with
 * free sizes and no volume yet is built when one arrives (null here).
 */
async function buildModel(src: { bytes: Uint8Array; name: string }, dims: Dims3 | null): Promise<OnnxVolumeModel | null> {
  const ort = await ortWeb(ortWasmBase);
  try {
    const declared = volumeModelInputDims(src.bytes);
    modelFree = declared.slice(2).some((d) => d == null);
    if (modelFree && !dims) return null;
    const size = dims ?? (declared.slice(2) as Dims3);
    return await openVolumeModel(src.bytes, ort, size, { patch: modelFree ? (patch ?? undefined) : undefined });
  } catch (e) {
    if (e instanceof SegGradCamError) throw new SegGradCamError(`${src.name}: ${e.message}`, e.code);
    throw new SegGradCamError(
      `${src.name}: ONNX Runtime cannot load it: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
      'model',
    );
  }
}

async function disposeModel(): Promise<void> {
  const old = model;
  model = null;
  cache = null;
  if (old) await old.dispose();
}

function modelInfo(name: string, m: OnnxVolumeModel | null, loadMs: number): VolumeModelInfo {
  if (!m)
    return {
      name,
      layers: [],
      bottleneck: '',
      inputDims: [1, 1, 0, 0, 0],
      freeSizes: modelFree,
      classCount: 0,
      activation: 'none',
      loadMs,
    };
  return {
    name,
    freeSizes: modelFree,
    layers: m.layers(),
    bottleneck: defaultVolumeLayer(m),
    inputDims: [...m.inputDims],
    classCount: m.logitsDims[1],
    activation: m.activation,
    loadMs,
  };
}

/** The model for the current volume (built now when its input sizes come from the volume), checked against the volume's size. */
async function currentModel(): Promise<{ m: OnnxVolumeModel; rebuilt: boolean }> {
  if (!modelBytes && !model) throw new SegGradCamError('no model is loaded', 'model');
  if (!volume) throw new SegGradCamError('no volume is loaded', 'image');
  let rebuilt = false;
  if (modelBytes && (!model || (modelBuiltFor !== null && modelBuiltFor !== buildKey(volume.dims)))) {
    const built = await buildModel(modelBytes, volume.dims);
    await disposeModel();
    model = built;
    modelBuiltFor = buildKey(volume.dims);
    rebuilt = true;
  }
  const m = model as OnnxVolumeModel;
  const c = m.inputDims[1];
  if (c !== 1) throw new SegGradCamError(`the model reads ${c} channels; the explorer gives it one volume (one channel)`, 'model');
  slides(m, volume.dims);
  return { m, rebuilt };
}

async function predict(id: number, since: number): Promise<VolumePrediction> {
  const { m, rebuilt } = await currentModel();
  const { data, dims } = volume as { data: Float32Array; dims: Dims3 };
  if (!cache || cache.model !== m || cache.data !== data) {
    send({ id, progress: { text: 'predicting' } });
    const p = await predictVolume(stoppable(m, cancelCheck(since)), data, dims, overlap, patchProgress(id));
    cache = { ...p, model: m, data };
  }
  const counts = new Array<number>(m.logitsDims[1]).fill(0);
  for (const l of cache.labels) counts[l]++;
  return {
    labels: cache.labels.slice(),
    dims: cache.dims,
    ms: cache.ms,
    counts,
    patches: cache.patches,
    model: rebuilt && modelBytes ? modelInfo(modelBytes.name, m, 0) : null,
  };
}

async function explain(id: number, params: ExplainVolumeParams, since: number): Promise<VolumeAnswer> {
  const t0 = performance.now();
  const cached = cache !== null;
  await predict(id, since);
  const { m } = await currentModel();
  const { data, dims } = volume as { data: Float32Array; dims: Dims3 };
  send({ id, progress: { text: 'explaining' } });
  const x = await explainQuestion(
    stoppable(m, questionCheck(id, since)),
    data,
    dims,
    cache as Prediction,
    { ...params, overlap },
    patchProgress(id),
  );
  return { ...x, ms: performance.now() - t0, cached };
}

function transfers(reply: VolumeReply): Transferable[] {
  const out: ArrayBufferLike[] = [];
  if (reply.type === 'explain') {
    const a = reply.answer;
    out.push(a.alpha.buffer, a.cam.buffer, a.heat.buffer, a.mask.buffer);
  }
  if (reply.type === 'load-volume') out.push(reply.info.data.buffer);
  if (reply.type === 'predict') out.push(reply.prediction.labels.buffer);
  return [...new Set(out)].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) as Transferable[];
}
