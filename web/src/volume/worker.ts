/**
 * The volume worker: holds the 3-D ONNX model (the library's OnnxVolumeModel on onnxruntime-web),
 * the volume and its prediction, so that the forward pass runs once per model and volume and
 * every question (voxel, box, class, object; class; layer) runs one fused gradient run of the
 * library's explainVolume — the same code as in Node. The page never blocks on inference.
 */
import { SegGradCamError } from '../../../src/errors.js';
import { decodeNifti } from '../../../src/io/nifti.js';
import { argmaxLabels, camOnVolume, defaultVolumeLayer, explainVolume } from '../../../src/volume/explain.js';
import { clipPercentiles, zScore } from '../../../src/volume/intensity.js';
import { OnnxVolumeModel } from '../../../src/volume/onnx-volume.js';
import { ortWeb } from '../onnx-model.js';
import type {
  Dims3,
  ExplainVolumeParams,
  Intensity,
  VolumeAnswer,
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
let modelBytes: { bytes: Uint8Array; name: string } | null = null;
let model: OnnxVolumeModel | null = null;
/** The volume sizes a model with free input sizes was built for. */
let modelBuiltFor: string | null = null;
let volume: { data: Float32Array; dims: Dims3 } | null = null;
/** The prediction of the current model on the current volume (dropped when either changes). */
let cache: { model: OnnxVolumeModel; data: Float32Array; logits: Float32Array; labels: Int32Array; ms: number } | null = null;
/** The newest explain request: older ones are answered 'superseded'. */
let latestExplain = -1;

const queue: VolumeWorkerRequest[] = [];
let running = false;

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.request.type === 'explain' || msg.request.type === 'cancel') latestExplain = msg.id;
  if (msg.request.type === 'cancel') {
    send({ id: msg.id, ok: true, reply: { type: 'cancel' } });
    return;
  }
  queue.push(msg);
  void pump();
};

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length > 0) {
      const msg = queue.shift() as VolumeWorkerRequest;
      if (msg.request.type === 'explain' && msg.id !== latestExplain) {
        send({ id: msg.id, ok: true, reply: { type: 'superseded' } });
        continue;
      }
      try {
        const reply = await handle(msg.id, msg.request);
        send({ id: msg.id, ok: true, reply }, transfers(reply));
      } catch (err) {
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

/** Lets queued messages in (a newer question can then supersede this one before its run). */
const yieldToEvents = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function handle(id: number, req: VolumeRequest): Promise<VolumeReply> {
  switch (req.type) {
    case 'init':
      ortWasmBase = req.ortWasmBase;
      return { type: 'init' };
    case 'load-model': {
      const t0 = performance.now();
      send({ id, progress: 'loading the model' });
      const next = await readSource(req.source);
      const built = await buildModel(next, volume?.dims ?? null);
      await disposeModel();
      modelBytes = next;
      model = built;
      modelBuiltFor = built && volume ? volume.dims.join('x') : null;
      return { type: 'load-model', info: modelInfo(next.name, built, performance.now() - t0) };
    }
    case 'load-volume': {
      send({ id, progress: 'reading the volume' });
      const src = await readSource(req.source);
      const nifti = await decodeNifti(src.bytes);
      const dims: Dims3 = [nifti.dims[2], nifti.dims[1], nifti.dims[0]];
      const data = preprocess(nifti.data, req.intensity);
      volume = { data, dims };
      cache = null;
      return {
        type: 'load-volume',
        info: { name: src.name, dims, data: data.slice(), spacing: nifti.spacing, affineSource: nifti.affineSource },
      };
    }
    case 'predict':
      return { type: 'predict', prediction: await predict(id) };
    case 'explain': {
      await yieldToEvents();
      if (latestExplain !== id) return { type: 'superseded' };
      const answer = await explain(id, req.params);
      // A newer question arrived during the run: this answer is stale.
      if (latestExplain !== id) return { type: 'superseded' };
      return { type: 'explain', answer };
    }
    case 'cancel':
      return { type: 'cancel' };
  }
}

function preprocess(data: Float32Array, intensity: Intensity): Float32Array {
  if (intensity === 'zscore') return zScore(data);
  if (intensity === 'clip-zscore') return zScore(clipPercentiles(data, { low: 0.5, high: 99.5 }));
  return data;
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
 * The volume model of the bytes. A model with free input sizes takes them from the volume; without
 * a volume yet it is built when one arrives (null here).
 */
async function buildModel(src: { bytes: Uint8Array; name: string }, dims: Dims3 | null): Promise<OnnxVolumeModel | null> {
  const ort = await ortWeb(ortWasmBase);
  try {
    return await OnnxVolumeModel.create(src.bytes, ort);
  } catch (err) {
    const free = err instanceof SegGradCamError && / is free /.test(err.message);
    if (free && !dims) return null;
    try {
      if (free && dims) return await OnnxVolumeModel.create(src.bytes, ort, { depth: dims[0], height: dims[1], width: dims[2] });
      throw err;
    } catch (e) {
      if (e instanceof SegGradCamError) throw new SegGradCamError(`${src.name}: ${e.message}`, e.code);
      throw new SegGradCamError(
        `${src.name}: ONNX Runtime cannot load it: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
        'model',
      );
    }
  }
}

async function disposeModel(): Promise<void> {
  const old = model;
  model = null;
  cache = null;
  if (old) await old.dispose();
}

function modelInfo(name: string, m: OnnxVolumeModel | null, loadMs: number): VolumeModelInfo {
  if (!m) return { name, layers: [], bottleneck: '', inputDims: [1, 1, 0, 0, 0], classCount: 0, activation: 'none', loadMs };
  return {
    name,
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
  if (!modelBytes) throw new SegGradCamError('no model is loaded', 'model');
  if (!volume) throw new SegGradCamError('no volume is loaded', 'image');
  let rebuilt = false;
  if (!model || (modelBuiltFor !== null && modelBuiltFor !== volume.dims.join('x'))) {
    const built = await buildModel(modelBytes, volume.dims);
    await disposeModel();
    model = built;
    modelBuiltFor = volume.dims.join('x');
    rebuilt = true;
  }
  const m = model as OnnxVolumeModel;
  const [, c, D, H, W] = m.inputDims;
  if (c !== 1) throw new SegGradCamError(`the model reads ${c} channels; the explorer gives it one volume (one channel)`, 'model');
  const v = volume.dims;
  if (D !== v[0] || H !== v[1] || W !== v[2])
    throw new SegGradCamError(
      `the volume is ${v.join('x')} voxels (D x H x W) and the model reads ${D}x${H}x${W}: the explorer explains volumes of the model's size (larger ones: explainSlidingWindow in the library)`,
      'shape',
    );
  return { m, rebuilt };
}

async function predict(id: number): Promise<VolumePrediction> {
  const { m, rebuilt } = await currentModel();
  const data = (volume as { data: Float32Array }).data;
  if (!cache || cache.model !== m || cache.data !== data) {
    send({ id, progress: 'predicting' });
    const t0 = performance.now();
    const logits = await m.predict(data);
    const labels = argmaxLabels(logits, m.logitsDims[1]);
    cache = { model: m, data, logits, labels, ms: performance.now() - t0 };
  }
  const [, k, d, h, w] = m.logitsDims;
  const counts = new Array<number>(k).fill(0);
  for (const l of cache.labels) counts[l]++;
  return {
    labels: cache.labels.slice(),
    dims: [d, h, w],
    ms: cache.ms,
    counts,
    model: rebuilt && modelBytes ? modelInfo(modelBytes.name, m, 0) : null,
  };
}

/**
 * The model as explainVolume sees it, with the cached prediction: explainVolume asks predict() for
 * the labels (class and object regions, the default class); that forward pass ran once per volume.
 */
function withCachedPrediction(m: OnnxVolumeModel, data: Float32Array, logits: Float32Array): OnnxVolumeModel {
  const view = Object.create(m) as OnnxVolumeModel;
  view.predict = (x: Float32Array) => (x === data ? Promise.resolve(logits.slice()) : m.predict(x));
  return view;
}

async function explain(id: number, params: ExplainVolumeParams): Promise<VolumeAnswer> {
  const t0 = performance.now();
  const cached = cache !== null;
  await predict(id);
  const { m } = await currentModel();
  const { data, dims } = volume as { data: Float32Array; dims: Dims3 };
  const logits = (cache as { logits: Float32Array }).logits;
  send({ id, progress: 'explaining' });
  const x = await explainVolume(withCachedPrediction(m, data, logits), data, params);
  const heat = camOnVolume(x.cam, x.camDims, dims);
  const [, , d, h, w] = m.logitsDims;
  return {
    layer: x.layer,
    classId: x.classId,
    score: x.score,
    alpha: x.alpha,
    cam: x.cam,
    camDims: x.camDims,
    heat,
    mask: x.mask,
    maskDims: [d, h, w],
    ms: performance.now() - t0,
    cached,
  };
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
