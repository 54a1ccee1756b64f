/**
 * A small pool of worker threads for batch runs, each holding its own model (one Explainer per
 * thread: no state is shared between threads). Items go to the first idle worker; a worker takes
 * one item at a time, decodes its image itself and writes its output files, and sends back only
 * the item's record. The caller bounds the items in flight (back-pressure), so at most one decoded
 * image per worker exists at any time.
 *
 * Workers start from `pool-worker.js` next to this file (the built package) or, under tsx, from
 * `pool-worker.ts` through a bootstrap that registers tsx in the worker first (as in
 * src/unet/parallel.ts: a .ts worker entry is not loadable by Node 20 itself).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SegGradCamError, type ErrorCode } from '../errors.js';
import type { ItemOptions, ItemRecord } from './item.js';
import type { BatchItem } from './manifest.js';
import type { ModelSpec } from './model.js';
import type { BatchPlan } from './plan.js';

export type ToPoolWorker =
  | { type: 'init'; model: ModelSpec; plan: BatchPlan; options: ItemOptions }
  /** options: this item's output options (default: the init's), so one pool serves several output folders. */
  | { type: 'item'; id: number; item: BatchItem; options?: ItemOptions };

export type FromPoolWorker =
  | { type: 'ready' }
  /** memory: the thread's TF.js tensors and bytes after the item (its forward pass released). */
  | { type: 'done'; id: number; record: ItemRecord; memory?: ThreadMemory }
  /** Writing the item's outputs failed (the run stops). */
  | { type: 'failed'; id: number; message: string; code?: ErrorCode }
  | { type: 'error'; message: string; code?: ErrorCode };

/** A worker thread's TF.js memory after an item (tf.memory()). */
export interface ThreadMemory {
  numTensors: number;
  numBytes: number;
}

function spawn(): Worker {
  const here = import.meta.url;
  if (/\.[cm]?ts$/.test(new URL(here).pathname)) {
    let tsxApi = 'tsx/esm/api';
    try {
      tsxApi = import.meta.resolve('tsx/esm/api');
    } catch {
      // the bare specifier, resolved from the working directory
    }
    const entry = new URL('./pool-worker.ts', here).href;
    const code = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(code, { eval: true });
  }
  return new Worker(new URL('./pool-worker.js', here));
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Items sent and not yet done. */
  held: number;
}

/** Items a worker holds at once: one computing, one whose files are being written (or the next to compute). */
export const ITEMS_PER_WORKER = 2;

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, { resolve: (r: ItemRecord) => void; reject: (e: Error) => void }>();
  private readonly waiting: Array<{ id: number; item: BatchItem; options?: ItemOptions }> = [];
  private nextId = 1;
  private failure: Error | undefined;
  /** Called with each worker's TF.js memory after each item (benches and tests watch it for leaks). */
  onMemory?: (worker: number, memory: ThreadMemory) => void;

  private constructor() {}

  /** Starts n workers, each loading the model and checking the plan; a bad plan or model rejects with its error. */
  static async start(n: number, model: ModelSpec, plan: BatchPlan, options: ItemOptions): Promise<WorkerPool> {
    model = { ...model, threads: model.threads ?? threadsPerWorker(n) };
    const pool = new WorkerPool();
    const ready: Array<Promise<void>> = [];
    for (let k = 0; k < n; k++) {
      const worker = spawn();
      const slot: Slot = { worker, ready: false, held: 0 };
      pool.slots.push(slot);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on('message', (m: FromPoolWorker) => {
            if (m.type === 'ready') {
              slot.ready = true;
              resolve();
              pool.pump();
            } else if (m.type === 'error') reject(m.code ? new SegGradCamError(m.message, m.code) : new Error(m.message));
            else if (m.type === 'failed') pool.finish(slot, m.id, m.code ? new SegGradCamError(m.message, m.code) : new Error(m.message));
            else {
              if (m.memory) pool.onMemory?.(k, m.memory);
              pool.finish(slot, m.id, m.record);
            }
          });
          worker.on('error', (e) => {
            reject(e);
            pool.fail(new Error(`batch worker ${k} crashed: ${e.message}`));
          });
          worker.on('exit', (code) => {
            reject(new Error(`batch worker ${k} exited (code ${code})`));
            pool.fail(new Error(`batch worker ${k} exited (code ${code})`));
          });
        }),
      );
      worker.postMessage({ type: 'init', model, plan, options } satisfies ToPoolWorker);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Items each worker holds now (sent, not yet done). */
  held(): number[] {
    return this.slots.map((s) => s.held);
  }

  /** Explains the item in the next idle worker; `options` replace the pool's output options for this item. */
  run(item: BatchItem, options?: ItemOptions): Promise<ItemRecord> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.waiting.push({ id, item, options });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (s.ready && s.held < ITEMS_PER_WORKER && (!slot || s.held < slot.held)) slot = s;
      if (!slot) return;
      const next = this.waiting.shift() as { id: number; item: BatchItem; options?: ItemOptions };
      slot.held++;
      slot.worker.postMessage({ type: 'item', id: next.id, item: next.item, options: next.options } satisfies ToPoolWorker);
    }
  }

  private finish(slot: Slot, id: number, outcome: ItemRecord | Error): void {
    slot.held--;
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (outcome instanceof Error) p?.reject(outcome);
    else p?.resolve(outcome);
    this.pump();
  }

  private fail(e: Error): void {
    if (this.closing) return;
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  private closing = false;

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** ONNX Runtime's intra-op threads for each of n worker threads: the cores shared out, at least 1. */
export function threadsPerWorker(n: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, n)));
}
