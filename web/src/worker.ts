/**
 * The inference worker: holds the backend, the model (an Explainer) and the current image, so
 * that the forward pass runs once per image and model and every new region, class, layer or
 * method runs only the backward part. The page never blocks on inference.
 */
import * as tf from '@tensorflow/tfjs';
import plainWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { Explainer } from '../../src/explain.js';
import { SegGradCamError } from '../../src/errors.js';
import { methodNames } from '../../src/methods/index.js';
import type { RgbaImage } from '../../src/image.js';
import { adapterFromArtifacts } from '../../src/model/load.js';
import { chooseBackend } from './backend-select.js';
import { checkWeightBytes, modelFromFiles } from './model-files.js';
import type { ExplainParams, ExplanationMsg, ModelInfo, ModelSource, Progress, Reply, Request, WorkerMessage, WorkerRequest } from './protocol.js';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
}
const scope = self as unknown as WorkerScope;

let explainer: Explainer | null = null;
let image: RgbaImage | null = null;
/** The image whose forward pass the explainer holds. */
let forwardImage: RgbaImage | null = null;
/** The newest explain request: older ones still queued are answered 'superseded'. */
let latestExplain = -1;

const queue: WorkerRequest[] = [];
let running = false;

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.request.type === 'explain' || msg.request.type === 'explain-layers') latestExplain = msg.id;
  queue.push(msg);
  void pump();
};

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length > 0) {
      const msg = queue.shift() as WorkerRequest;
      const isExplain = msg.request.type === 'explain' || msg.request.type === 'explain-layers';
      if (isExplain && msg.id !== latestExplain) {
        send({ id: msg.id, ok: true, reply: { type: 'superseded' } });
        continue;
      }
      try {
        const reply = await handle(msg.id, msg.request);
        send({ id: msg.id, ok: true, reply }, transfers(reply));
      } catch (err) {
        const e = err as Error;
        const code = err instanceof SegGradCamError ? err.code : undefined;
        send({ id: msg.id, ok: false, error: { message: e?.message ?? String(err), code } });
      }
    }
  } finally {
    running = false;
  }
}

function send(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

const progress = (id: number, p: Progress) => send({ id, progress: p });

/** Lets queued messages in (a newer request can then supersede a long one). */
const yieldToEvents = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function handle(id: number, req: Request): Promise<Reply> {
  switch (req.type) {
    case 'init': {
      progress(id, { phase: 'choosing the backend' });
      // tfjs wants all three; the threaded one is never fetched (the library runs wasm single-threaded).
      const wasm = {
        'tfjs-backend-wasm.wasm': absolute(plainWasm),
        'tfjs-backend-wasm-simd.wasm': absolute(simdWasm),
        'tfjs-backend-wasm-threaded-simd.wasm': absolute(threadedWasm),
      };
      const report = await chooseBackend(req.backend, wasm, req.cachedChoice);
      tf.enableProdMode();
      return { type: 'init', report, methods: methodNames() };
    }
    case 'load-model':
      return { type: 'load-model', info: await openModel(id, req.source, req.classNames) };
    case 'set-image': {
      const e = requireModel();
      image = { width: req.width, height: req.height, data: req.data };
      forwardImage = null;
      progress(id, { phase: 'forward pass' });
      const t0 = performance.now();
      const p = await e.predict(image);
      forwardImage = image;
      return { type: 'set-image', prediction: { labels: p.labels.slice(), width: p.width, height: p.height, ms: performance.now() - t0 } };
    }
    case 'explain':
      return { type: 'explain', explanation: await explainOne(id, req.params) };
    case 'explain-layers': {
      const t0 = performance.now();
      for (let i = 0; i < req.layers.length; i++) {
        progress(id, { phase: `layer ${i + 1} of ${req.layers.length}`, fraction: i / req.layers.length });
        await yieldToEvents();
        if (latestExplain !== id) return { type: 'superseded' };
        const explanation = await explainOne(id, { ...req.params, layer: req.layers[i] }, false);
        const partial: Reply = { type: 'layer-result', index: i, explanation };
        send({ id, partial }, transfers(partial));
      }
      return { type: 'explain-layers', ms: performance.now() - t0 };
    }
  }
}

function requireModel(): Explainer {
  if (!explainer) throw new SegGradCamError('no model is loaded', 'model');
  return explainer;
}

async function explainOne(id: number, params: ExplainParams, report = true): Promise<ExplanationMsg> {
  const e = requireModel();
  if (!image) throw new SegGradCamError('no image is loaded', 'image');
  const cached = forwardImage === image;
  if (report) progress(id, { phase: cached ? 'backward pass' : 'forward and backward pass' });
  const t0 = performance.now();
  // One layer, no augmentation or truncation: the fields about those are left out of the message.
  const { layers: _layers, augmentations: _augmentations, receptiveField: _field, ...x } = await e.explain(image, params);
  const ms = performance.now() - t0;
  forwardImage = image;
  // The prediction's labels belong to the cached pass: send a copy.
  return { ...x, prediction: { ...x.prediction, labels: x.prediction.labels.slice() }, ms, cached };
}

function transfers(reply: Reply): Transferable[] {
  const out: ArrayBufferLike[] = [];
  const ex = reply.type === 'explain' || reply.type === 'layer-result' ? reply.explanation : null;
  if (ex) {
    out.push(ex.cam.buffer, ex.heatmap.buffer, ex.regionMask.buffer, ex.prediction.labels.buffer);
    if (ex.weights) out.push(ex.weights.buffer);
  }
  if (reply.type === 'set-image') out.push(reply.prediction.labels.buffer);
  // Only whole, distinct ArrayBuffers can be transferred.
  return [...new Set(out)].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) as Transferable[];
}

/** Vite gives asset URLs relative to the worker script; tfjs wants absolute ones. */
function absolute(url: string): string {
  return new URL(url, self.location.href).href;
}

async function openModel(id: number, source: ModelSource, labels?: string[]): Promise<ModelInfo> {
  const t0 = performance.now();
  progress(id, { phase: 'loading the model', fraction: 0 });
  let artifacts: tf.io.ModelArtifacts | undefined;
  if (source.kind === 'url') {
    const handler = tf.io.browserHTTPRequest(absolute(source.url), { onProgress: (f: number) => progress(id, { phase: 'loading the model', fraction: f }) });
    try {
      artifacts = await handler.load?.();
    } catch (err) {
      throw new SegGradCamError(`cannot load the model from ${source.url}: ${(err as Error).message.split('\n')[0]}`, 'model');
    }
  } else {
    artifacts = await modelFromFiles(source.files);
  }
  if (!artifacts) throw new SegGradCamError('the model source cannot be read', 'model');
  checkWeightBytes(artifacts);
  progress(id, { phase: 'building the model' });
  const adapter = await adapterFromArtifacts(artifacts);
  const meta = artifacts.userDefinedMetadata as { classNames?: unknown; inputRange?: unknown } | undefined;
  const metaNames = Array.isArray(meta?.classNames) && meta.classNames.every((s) => typeof s === 'string') ? (meta.classNames as string[]) : undefined;
  const range = Array.isArray(meta?.inputRange) && meta.inputRange.length === 2 && meta.inputRange.every((v) => typeof v === 'number') ? (meta.inputRange as [number, number]) : undefined;
  let next: Explainer;
  try {
    next = new Explainer(adapter, { classNames: labels ?? metaNames, inputRange: range });
  } catch (err) {
    adapter.dispose();
    throw err;
  }
  explainer?.dispose();
  explainer = next;
  image = null;
  forwardImage = null;
  return {
    kind: adapter.kind,
    input: adapter.input,
    output: adapter.output,
    classCount: next.classCount,
    classNames: next.options.classNames ?? null,
    layers: next.layers(),
    bottleneck: next.bottleneck,
    inputRange: range ?? [0, 1],
    loadMs: performance.now() - t0,
  };
}
