/**
 * The inference worker: holds the backend, the model (an Explainer) and the current image, so
 * that the forward pass runs once per image and model and every new region, class, layer or
 * method runs only the backward part. The page never blocks on inference.
 */
import * as tf from '@tensorflow/tfjs';
import plainWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { Explainer, type Explanation } from '../../src/explain.js';
import { SegGradCamError } from '../../src/errors.js';
import { createMethod, hasNegativeMap, isModelMethod, methodNames } from '../../src/methods/index.js';
import type { RgbaImage } from '../../src/image.js';
import { openModelSource, type OpenedModel } from '../../src/engine/open.js';
import { unsupportedMethods } from '../../src/explain/support.js';
import { chooseBackend } from './backend-select.js';
import type { ModelAdapter } from '../../src/engine/contract.js';
import { isOnnxName, modelFromFiles, onnxFromFiles } from './model-files.js';
import { ortThreads, ortWeb } from './onnx-model.js';
import { Cancelled, expectedPasses, PassMeter, type PassCount } from './pass-meter.js';
import {
  ONNX_ENGINE,
  type ExplainParams,
  type ExplanationMsg,
  type ModelInfo,
  type ModelSource,
  type Progress,
  type Reply,
  type Request,
  type WorkerMessage,
  type WorkerRequest,
} from './protocol.js';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
}
const scope = self as unknown as WorkerScope;

let explainer: Explainer | null = null;
let image: RgbaImage | null = null;
/** The image whose forward pass the explainer holds. */
let forwardImage: RgbaImage | null = null;
/** onnxruntime-web's files (the page says where, in 'init'). */
let ortWasmBase = '';
/** The newest explain request: older ones still queued are answered 'superseded'. */
let latestExplain = -1;

/** Counts the passes of the running explanation and stops it at its next pass once it is stale. */
const meter = new PassMeter();

const queue: WorkerRequest[] = [];
let running = false;

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.request.type === 'explain' || msg.request.type === 'explain-layers' || msg.request.type === 'cancel') latestExplain = msg.id;
  if (msg.request.type === 'cancel') {
    // Not queued: the running job sees it at its next pass.
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
        if (err instanceof Cancelled) {
          send({ id: msg.id, ok: true, reply: { type: 'superseded' } });
          continue;
        }
        const typed = err instanceof SegGradCamError;
        const message = err instanceof Error ? err.message : String(err);
        // The library's messages are written for users; anything else is shortened to its first line.
        send({ id: msg.id, ok: false, error: { message: typed ? message : message.split('\n')[0], code: typed ? err.code : undefined } });
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
      ortWasmBase = req.ortWasmBase;
      progress(id, { phase: 'choosing the backend' });
      // tfjs wants all three; the threaded one is never fetched (the library runs wasm single-threaded).
      const wasm = {
        'tfjs-backend-wasm.wasm': absolute(plainWasm),
        'tfjs-backend-wasm-simd.wasm': absolute(simdWasm),
        'tfjs-backend-wasm-threaded-simd.wasm': absolute(threadedWasm),
      };
      const report = await chooseBackend(req.backend, wasm, req.cachedChoice);
      tf.enableProdMode();
      const negativeMethods = methodNames().filter(hasNegativeMap);
      return {
        type: 'init',
        report,
        methods: methodNames(),
        inputMethods: inputMethods(),
        negativeMethods,
        classFreeMethods: classFreeMethods(),
      };
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
    case 'cancel':
      return { type: 'cancel' };
    case 'explain':
      return { type: 'explain', explanation: await explainOne(id, req.params) };
    case 'explain-layers': {
      const t0 = performance.now();
      // Chunks of layers: each chunk's gradients come from one backward pass (explainLayers), and
      // between chunks a newer request can supersede this one.
      const chunk = 8;
      const count = meter.start({ isStale: () => latestExplain !== id, onPass: () => undefined });
      try {
        for (let i = 0; i < req.layers.length; i += chunk) {
          progress(id, {
            phase: `layers ${i + 1}–${Math.min(i + chunk, req.layers.length)} of ${req.layers.length}`,
            fraction: i / req.layers.length,
          });
          await yieldToEvents();
          if (latestExplain !== id) return { type: 'superseded' };
          const part = await explainLayers(req.params, req.layers.slice(i, i + chunk), count);
          part.forEach((explanation, k) => {
            const partial: Reply = { type: 'layer-result', index: i + k, explanation };
            send({ id, partial }, transfers(partial));
          });
        }
      } finally {
        meter.end();
      }
      return { type: 'explain-layers', ms: performance.now() - t0 };
    }
  }
}

function requireModel(): Explainer {
  if (!explainer) throw new SegGradCamError('no model is loaded', 'model');
  return explainer;
}

async function explainOne(id: number, params: ExplainParams): Promise<ExplanationMsg> {
  const e = requireModel();
  if (!image) throw new SegGradCamError('no image is loaded', 'image');
  const cached = forwardImage === image;
  const method = createMethod(params.method);
  const channels = e.layers().find((l) => l.name === params.layer)?.outputShape[3] ?? 0;
  const expected = expectedPasses(method, channels);
  progress(id, {
    phase: expected === null ? 'explaining' : `0 of ${expected} passes`,
    passes: { forward: 0, backward: 0, expected },
    fraction: expected === null ? undefined : 0,
  });
  const onPass = (c: PassCount) => {
    if (expected === null) return;
    const done = Math.max(c.forward, c.backward);
    progress(id, {
      phase: `${Math.min(done, expected)} of ${expected} passes`,
      passes: { ...c, expected },
      fraction: Math.min(1, done / expected),
    });
  };
  const t0 = performance.now();
  const count = meter.start({ isStale: () => latestExplain !== id, onPass });
  let x: Explanation;
  try {
    x = await e.explain(image, params);
  } finally {
    meter.end();
  }
  forwardImage = image;
  return toMessage(x, performance.now() - t0, cached, count);
}

/** The methods that attribute to the model input (the layer does not matter to them). */
function inputMethods(): string[] {
  return methodNames().filter((name) => {
    const m = createMethod(name);
    return isModelMethod(m) && m.target === 'input';
  });
}

/** The methods whose map ignores the objective (gradient-free CAMs: the activations alone), so a contrast class changes nothing. */
function classFreeMethods(): string[] {
  return methodNames().filter((name) => {
    const m = createMethod(name);
    return !isModelMethod(m) && !m.usesGradients;
  });
}

/** One request at several layers, one backward pass where the adapter allows (see Explainer.explainLayers). */
async function explainLayers(params: Omit<ExplainParams, 'layer'>, layers: string[], count: PassCount): Promise<ExplanationMsg[]> {
  const e = requireModel();
  if (!image) throw new SegGradCamError('no image is loaded', 'image');
  const cached = forwardImage === image;
  const t0 = performance.now();
  const all = await e.explainLayers(image, params, layers);
  forwardImage = image;
  const ms = (performance.now() - t0) / layers.length;
  return all.map((x) => toMessage(x, ms, cached, count));
}

/**
 * An explanation as a message. One layer, no augmentation or truncation: the fields about those
 * are left out. Each message transfers its buffers, so the arrays an explanation shares with the
 * cached pass or with other layers' answers (labels, region mask) are copied.
 */
function toMessage(
  { layers: _layers, augmentations: _augmentations, receptiveField: _field, ...x }: Explanation,
  ms: number,
  cached: boolean,
  passes: PassCount,
): ExplanationMsg {
  return {
    ...x,
    regionMask: x.regionMask.slice(),
    prediction: { ...x.prediction, labels: x.prediction.labels.slice() },
    ms,
    cached,
    passes: { ...passes },
    tensors: tf.memory().numTensors,
  };
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

/**
 * The chosen files or URL → the library's openModel, which picks the engine (a model.json → TF.js,
 * an .onnx model → ONNX on the worker's onnxruntime-web). Errors name the model.
 */
async function loadModel(id: number, source: ModelSource): Promise<Loaded> {
  const onnxFile = source.kind === 'files' ? await onnxFromFiles(source.files) : null;
  const input = source.kind === 'url' ? absolute(source.url) : (onnxFile?.bytes ?? (await modelFromFiles(source.files)));
  let opened: OpenedModel;
  try {
    opened = await openModelSource(input, {
      ort: () => ortWeb(ortWasmBase),
      onProgress: (fraction) => progress(id, { phase: 'loading the model', fraction }),
    });
  } catch (err) {
    const name = onnxFile?.name ?? (source.kind === 'url' && isOnnxName(source.url) ? source.url.split(/[?#]/)[0].split('/').pop() : null);
    if (!name || !(err instanceof SegGradCamError) || err.message.includes(name)) throw err;
    throw new SegGradCamError(`${name}: ${err.message}`, err.code);
  }
  const { adapter, metadata } = opened;
  const threads = ortThreads();
  const engine = adapter.kind === 'onnx' ? `${ONNX_ENGINE}, ${threads} thread${threads === 1 ? '' : 's'}` : null;
  return { adapter, classNames: metadata.classNames, inputRange: metadata.inputRange, engine };
}

interface Loaded {
  adapter: ModelAdapter;
  classNames?: string[];
  inputRange?: [number, number];
  engine: string | null;
}

async function openModel(id: number, source: ModelSource, labels?: string[]): Promise<ModelInfo> {
  const t0 = performance.now();
  progress(id, { phase: 'loading the model', fraction: 0 });
  const { adapter, classNames, inputRange: range, engine } = await loadModel(id, source);
  let next: Explainer;
  try {
    next = new Explainer(meter.wrap(adapter), { classNames: labels ?? classNames, inputRange: range });
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
    engine,
    input: adapter.input,
    output: adapter.output,
    classCount: next.classCount,
    classNames: next.options.classNames ?? null,
    layers: next.layers(),
    bottleneck: next.bottleneck,
    inputRange: range ?? [0, 1],
    loadMs: performance.now() - t0,
    unsupported: await unsupportedMethods(adapter, next.layers()),
  };
}
