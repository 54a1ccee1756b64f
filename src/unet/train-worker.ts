/**
 * Entry of a training worker thread (started by src/unet/parallel.ts): a copy of the model on its
 * own tfjs backend (with the project's kernel fixes) and its own TextureMnist. Per step it takes
 * the main thread's weights, builds its shard of train tiles, and returns the gradients of the
 * trainable weights, the shard's loss, the confusion counts of its predictions and its updated
 * batch-norm moving statistics. While the main thread applies the step it prepares the tiles of
 * its next shard (the same shard of the next batch: indices + batch).
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { setupBackend, type BackendName } from '../backend/index.js';
import { SegGradCamError } from '../errors.js';
import { NUM_CLASSES, TextureMnist } from '../data/texture-mnist.js';
import { loadTextureMnistAssets } from '../data/assets-node.js';
import { Confusion } from './metrics.js';
import type { FromWorker, ToWorker, WorkerConfig } from './parallel.js';
import { trainTiles } from './dataset.js';
import { segmentationLoss } from './loss.js';

const port = parentPort;
if (!port) throw new Error('train-worker.ts must run in a worker thread');

let config: WorkerConfig | undefined;
let model: tf.LayersModel | undefined;
let data: TextureMnist | undefined;
let prefetched: { key: string; tiles: ReturnType<typeof trainTiles> } | undefined;

function post(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(m, transfer);
}

function shapes(vars: tf.LayerVariable[]): number[][] {
  return vars.map((v) => v.shape.map((d) => d ?? -1));
}

async function init(msg: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  config = msg.config;
  if (config.backend !== 'wasm' && config.backend !== 'cpu')
    throw new SegGradCamError(`training workers run on wasm or cpu, not '${config.backend}'`, 'usage');
  await setupBackend(config.backend as BackendName);
  data = new TextureMnist(await loadTextureMnistAssets(), config.data);
  model = await tf.models.modelFromJSON({ modelTopology: msg.topology } as Parameters<typeof tf.models.modelFromJSON>[0]);
  post({ type: 'ready', trainable: shapes(model.trainableWeights), stats: shapes(model.nonTrainableWeights) });
}

function tilesFor(indices: number[]): ReturnType<typeof trainTiles> {
  const key = indices.join(',');
  if (prefetched && prefetched.key === key) {
    const t = prefetched.tiles;
    prefetched = undefined;
    return t;
  }
  return trainTiles(data!, config!, config!.classWeights, indices);
}

function setWeights(vars: tf.LayerVariable[], values: Float32Array[]): void {
  if (values.length !== vars.length) throw new Error(`expected ${vars.length} weight arrays, got ${values.length}`);
  vars.forEach((v, i) => {
    const t = tf.tensor(values[i], v.read().shape, 'float32');
    v.write(t);
    t.dispose();
  });
}

function step(msg: Extract<ToWorker, { type: 'step' }>): void {
  if (!model || !config || !data) throw new Error('training worker: step before init');
  const m = model;
  const c = config;
  setWeights(m.trainableWeights, msg.trainable);
  setWeights(m.nonTrainableWeights, msg.stats);
  const n = msg.indices.length;
  const size = c.data.size ?? 64;
  const { x, y, oh, ow } = tilesFor(msg.indices);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const xt = tf.tensor4d(x, [n, size, size, 3]);
  const yt = tf.tensor4d(oh, [n, size, size, NUM_CLASSES]);
  const wt = tf.tensor4d(ow, [n, size, size, NUM_CLASSES]);
  let pred: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const logits = m.apply(xt, { training: true }) as tf.Tensor4D;
    pred = tf.keep(tf.argMax(logits, -1));
    return segmentationLoss(logits, yt, wt, c.ceWeight, c.diceWeight);
  }, vars);
  const loss = value.dataSync()[0];
  const g = vars.map((v) => {
    const t = grads[v.name];
    if (!t) throw new Error(`no gradient for ${v.name}`);
    return Float32Array.from(t.dataSync() as Float32Array);
  });
  const stats = m.nonTrainableWeights.map((v) => Float32Array.from(v.read().dataSync() as Float32Array));
  const conf = new Confusion(NUM_CLASSES).add(y, pred ? pred.dataSync() : new Int32Array(y.length));
  tf.dispose([value, xt, yt, wt, pred as tf.Tensor, ...Object.values(grads)]);
  post(
    { type: 'result', id: msg.id, n, loss, grads: g, stats, confusion: conf.counts },
    [...g, ...stats, conf.counts].map((a) => a.buffer as ArrayBuffer),
  );
  // prepare the next step's shard (the same position in the next batch) while the main thread works
  const next = msg.indices.map((i) => i + c.batch);
  try {
    prefetched = { key: next.join(','), tiles: trainTiles(data, c, c.classWeights, next) };
  } catch {
    prefetched = undefined; // the next step builds its tiles itself (and reports any error)
  }
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain.then(async () => {
    try {
      if (msg.type === 'init') await init(msg);
      else step(msg);
    } catch (e) {
      const err = e as Error & { code?: SegGradCamError['code'] };
      post({
        type: 'error',
        id: msg.type === 'init' ? 0 : msg.id,
        name: err?.name ?? 'Error',
        message: err?.message ?? String(e),
        code: err instanceof SegGradCamError ? err.code : undefined,
        stack: err?.stack,
      });
    }
  });
});
