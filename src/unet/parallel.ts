/**
 * Data-parallel training steps in worker threads (`trainUnet` with `workers` > 1).
 *
 * The main thread owns the model, Adam and the schedule. Each step it splits the batch's tile
 * indices into n contiguous shards (sizes differ by at most 1) and sends every worker the current
 * weights (trainable and batch-norm moving statistics, as Float32Arrays). A worker
 * (`train-worker.ts`) holds a copy of the model on its own tfjs backend and its own TextureMnist
 * (same options → same tiles), builds its shard, runs the model in training mode, and returns the
 * gradients of the trainable weights, its shard's loss, the confusion counts of its predictions
 * and its updated moving statistics. The main thread averages gradients, loss and moving
 * statistics weighted by shard size and applies the gradients with `optimizer.applyGradients`.
 *
 * What differs from one process (docs/training.md): batch norm normalises with each shard's own
 * statistics ("ghost batch norm"), the class-weighted cross-entropy is normalised and the soft Dice
 * is computed within each shard, and the moving variance is the mean of the shard variances (the
 * between-shard part of the batch variance is left out). With one shard everything is identical.
 *
 * Workers are started from `train-worker.js` next to this file (the built package) or, when this
 * module runs from TypeScript source under tsx, from `train-worker.ts` through a tiny bootstrap that
 * registers tsx in the worker first (in Node 20.20 a .ts worker entry fails with "Unknown file
 * extension" even with `execArgv: ['--import', 'tsx']`).
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError, type ErrorCode } from '../errors.js';
import type { TextureMnistOptions } from '../data/texture-mnist.js';

export const MAX_TRAIN_WORKERS = 32;

/** Everything a worker needs besides the model: backend, data recipe, loss. */
export interface WorkerConfig {
  /** tfjs backend of the worker ('wasm' or 'cpu'; the main thread's). */
  backend: string;
  data: TextureMnistOptions;
  flip: boolean;
  seed: number;
  /** The full batch (a worker prefetches its next shard at indices + batch). */
  batch: number;
  classWeights: number[];
  ceWeight: number;
  diceWeight: number;
}

/** Messages main → worker. */
export type ToWorker =
  | { type: 'init'; config: WorkerConfig; topology: unknown }
  | { type: 'step'; id: number; indices: number[]; trainable: Float32Array[]; stats: Float32Array[] };

/** Messages worker → main. */
export type FromWorker =
  | { type: 'ready'; trainable: number[][]; stats: number[][] }
  | { type: 'result'; id: number; n: number; loss: number; grads: Float32Array[]; stats: Float32Array[]; confusion: Float64Array }
  | { type: 'error'; id?: number; name: string; message: string; code?: ErrorCode; stack?: string };

/** A training worker failed (crashed, or threw something that is not a usage error). */
export class TrainWorkerError extends Error {
  constructor(
    message: string,
    readonly worker: number,
    readonly workerStack?: string,
  ) {
    super(message);
    this.name = 'TrainWorkerError';
  }
}

/** Contiguous shards of `idx`, sizes differing by at most one (the first ones larger). */
export function shardIndices(idx: number[], n: number): number[][] {
  const out: number[][] = [];
  const base = Math.floor(idx.length / n);
  const extra = idx.length % n;
  let at = 0;
  for (let k = 0; k < n; k++) {
    const len = base + (k < extra ? 1 : 0);
    out.push(idx.slice(at, at + len));
    at += len;
  }
  return out;
}

let live = 0;
/** Training worker threads currently alive in this process (for tests: 0 after training). */
export function liveTrainWorkers(): number {
  return live;
}

function spawnWorker(): Worker {
  const here = import.meta.url;
  let worker: Worker;
  if (/\.[cm]?ts$/.test(new URL(here).pathname)) {
    // running from TypeScript source (tsx): register tsx inside the worker, then load the .ts entry
    let tsxApi = 'tsx/esm/api';
    try {
      tsxApi = import.meta.resolve('tsx/esm/api');
    } catch {
      // keep the bare specifier (resolved from the working directory)
    }
    const entry = new URL('./train-worker.ts', here).href;
    const code = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
    worker = new Worker(code, { eval: true });
  } else {
    worker = new Worker(new URL('./train-worker.js', here));
  }
  live++;
  worker.once('exit', () => live--);
  return worker;
}

interface Pending {
  resolve: (m: FromWorker) => void;
  reject: (e: Error) => void;
}

/** One worker thread with a request/response channel; any failure rejects what is pending. */
class WorkerHandle {
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private exited = false;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly index: number,
    private readonly worker: Worker = spawnWorker(),
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e: Error) =>
      this.fail(new TrainWorkerError(`training worker ${index} crashed: ${e?.message ?? e}`, index, e?.stack)),
    );
    this.exitPromise = new Promise((res) =>
      worker.once('exit', (code) => {
        this.exited = true;
        this.fail(new TrainWorkerError(`training worker ${index} exited (code ${code})`, index));
        res();
      }),
    );
  }

  private onMessage(m: FromWorker): void {
    const id = m.type === 'ready' ? 0 : (m.id ?? -1);
    if (m.type === 'error') {
      const err =
        m.name === 'SegGradCamError' && m.code
          ? new SegGradCamError(`training worker ${this.index}: ${m.message}`, m.code)
          : new TrainWorkerError(`training worker ${this.index} failed: ${m.message}`, this.index, m.stack);
      if (id < 0 || !this.pending.has(id)) this.fail(err);
      else this.settle(id, undefined, err);
      return;
    }
    this.settle(id, m);
  }

  private settle(id: number, m?: FromWorker, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (err) p.reject(err);
    else p.resolve(m as FromWorker);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(this.failure);
    }
  }

  /** Sends a message and waits for the reply with the same id (0 = init → ready). */
  request(msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    const id = msg.type === 'init' ? 0 : msg.id;
    return new Promise<FromWorker>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  async terminate(): Promise<void> {
    if (!this.exited) {
      await this.worker.terminate();
      await this.exitPromise;
    }
  }
}

export interface ParallelStepResult {
  /** Shard-size-weighted mean of the shard losses. */
  loss: number;
  /** Shard-size-weighted mean gradients, in the order of model.trainableWeights. */
  grads: Float32Array[];
  /** Summed confusion counts (truth x prediction, 11 x 11) of the batch's predictions. */
  confusion: Float64Array;
}

function shapesOf(vars: tf.LayerVariable[]): number[][] {
  return vars.map((v) => v.shape.map((d) => d ?? -1));
}

function copyOf(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

/** n training workers with copies of one model (see the file comment). */
export class DataParallelPool {
  private nextId = 1;

  private constructor(private readonly workers: WorkerHandle[]) {}

  get size(): number {
    return this.workers.length;
  }

  /** Starts n workers for `model` (its topology; weights are sent with every step). */
  static async start(model: tf.LayersModel, config: WorkerConfig, n: number): Promise<DataParallelPool> {
    if (!Number.isInteger(n) || n < 1 || n > MAX_TRAIN_WORKERS)
      throw new SegGradCamError(`workers must be an integer in 1..${MAX_TRAIN_WORKERS} (got ${n})`, 'usage');
    const topology = model.toJSON(null, false);
    const handles: WorkerHandle[] = [];
    const pool = new DataParallelPool(handles);
    try {
      for (let k = 0; k < n; k++) handles.push(new WorkerHandle(k));
      const wantT = JSON.stringify(shapesOf(model.trainableWeights));
      const wantS = JSON.stringify(shapesOf(model.nonTrainableWeights));
      const replies = await Promise.all(handles.map((h) => h.request({ type: 'init', config, topology })));
      replies.forEach((r, k) => {
        if (r.type !== 'ready' || JSON.stringify(r.trainable) !== wantT || JSON.stringify(r.stats) !== wantS)
          throw new TrainWorkerError(`training worker ${k} built a model with different weights than the main thread's`, k);
      });
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * One data-parallel step on the train tiles `idx`: gradients at the model's current weights.
   * Also sets the model's batch-norm moving statistics to the shard-weighted mean of the workers'
   * updated ones (the workers get them back with the next step, so all copies stay equal).
   */
  async step(idx: number[], model: tf.LayersModel): Promise<ParallelStepResult> {
    const shards = shardIndices(idx, this.workers.length);
    const tw = model.trainableWeights;
    const sw = model.nonTrainableWeights;
    const trainable = tw.map((v) => copyOf(v.read()));
    const stats = sw.map((v) => copyOf(v.read()));
    const id = this.nextId++;
    const replies = await Promise.all(
      this.workers.map((h, k) => {
        if (shards[k].length === 0) return Promise.resolve(undefined);
        // the last worker gets the arrays themselves, the others copies (a transferred buffer is gone)
        const last = k === this.workers.length - 1;
        const t = last ? trainable : trainable.map((a) => a.slice());
        const s = last ? stats : stats.map((a) => a.slice());
        return h.request(
          { type: 'step', id, indices: shards[k], trainable: t, stats: s },
          [...t, ...s].map((a) => a.buffer as ArrayBuffer),
        );
      }),
    );
    const total = idx.length;
    const grads = tw.map((v) => new Float32Array(v.shape.reduce<number>((a, b) => a * (b ?? 1), 1)));
    const newStats = sw.map((v) => new Float32Array(v.shape.reduce<number>((a, b) => a * (b ?? 1), 1)));
    let confusion = new Float64Array(0);
    let loss = 0;
    for (const r of replies) {
      if (!r) continue;
      if (r.type !== 'result' || r.id !== id) throw new Error(`training worker: unexpected reply ${r.type}`);
      const w = r.n / total;
      loss += w * r.loss;
      r.grads.forEach((g, i) => {
        const acc = grads[i];
        for (let j = 0; j < g.length; j++) acc[j] += w * g[j];
      });
      r.stats.forEach((g, i) => {
        const acc = newStats[i];
        for (let j = 0; j < g.length; j++) acc[j] += w * g[j];
      });
      if (confusion.length === 0) confusion = new Float64Array(r.confusion.length);
      for (let j = 0; j < confusion.length; j++) confusion[j] += r.confusion[j];
    }
    sw.forEach((v, i) => {
      const t = tf.tensor(newStats[i], v.read().shape, 'float32');
      v.write(t);
      t.dispose();
    });
    return { loss, grads, confusion };
  }

  /** Terminates every worker (idempotent). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((h) => h.terminate()));
  }
}
