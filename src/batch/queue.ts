/**
 * Batch runs over many machines on BullMQ (Redis). The submitter enqueues one job per unfinished
 * item (its requests inside: the plan), with an idempotent job id (a hash of the output folder and
 * the item id: submitting again adds nothing twice). Workers (`runQueueWorker`, any machine) take
 * jobs with one worker thread and one model per core (src/batch/pool.ts) and write the item's
 * files and ledger line into the shared output folder exactly as a local run does. The submitter
 * follows the ledger for progress and finishes with the same files and summary as a local run.
 *
 * Exactly once: a job whose worker dies is taken again after its lock expires (BullMQ's stalled-job
 * check); the item's files are then replaced by identical ones through atomic renames, and if the
 * dead worker had already written its ledger line, the item has two equal lines, of which the
 * results keep one. Jobs failing to write (a full disk) are retried with exponential back-off;
 * after the last attempt the submitter records the item as failed.
 */
import { createHash } from 'node:crypto';
import { cpus, hostname } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import { SegGradCamError } from '../errors.js';
import type { ItemOptions, ItemRecord } from './item.js';
import { LedgerWriter, readLedger } from './ledger.js';
import type { BatchItem } from './manifest.js';
import type { ModelSpec } from './model.js';
import type { BatchPlan } from './plan.js';
import { ITEMS_PER_WORKER, WorkerPool } from './pool.js';
import { connectionOf, DEFAULT_QUEUE_NAME } from './redis-url.js';

export { connectionOf, DEFAULT_QUEUE_NAME } from './redis-url.js';

export const JOB_ATTEMPTS = 3;

/** What a job carries: everything a worker on another machine needs (paths must be valid there). */
export interface ItemJob {
  item: BatchItem;
  model: ModelSpec;
  plan: BatchPlan;
  options: ItemOptions;
}

/** The job id of an item: the same for every submission of the same item to the same output folder. */
export const jobIdOf = (outDir: string, itemId: string) => createHash('sha1').update(`${outDir}\0${itemId}`).digest('hex');

export interface SubmitOptions {
  queue: string;
  queueName?: string;
  retryFailed?: boolean;
  /** How often the ledger is read for progress (ms, default 300). */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called when Redis holds fewer jobs than there are unfinished items (they are enqueued again). */
  onLost?: (missing: number) => void;
}

/**
 * Enqueues the items and yields each one's record as it appears in the ledger (written by the
 * workers); returns when every item is in the ledger, or when the signal aborts (jobs stay queued).
 */
export async function* submitAndFollow(
  todo: BatchItem[],
  job: Omit<ItemJob, 'item'>,
  options: SubmitOptions,
): AsyncGenerator<ItemRecord, void> {
  const outDir = job.options.outDir;
  const queue = new Queue<ItemJob>(options.queueName ?? DEFAULT_QUEUE_NAME, { connection: connectionOf(options.queue) });
  queue.on('error', () => {}); // connection errors: ioredis reconnects and the commands wait for it
  const writer = await LedgerWriter.open(outDir);
  try {
    const ids = new Map(todo.map((it) => [jobIdOf(outDir, it.id), it] as const));
    const byItem = new Map(todo.map((it) => [it.id, it] as const));
    if (options.retryFailed)
      for (const id of ids.keys()) {
        const old = await queue.getJob(id);
        if (old && (await old.isFailed())) await old.remove();
      }
    // Adding a job whose id exists adds nothing: enqueueing an item again is safe.
    const enqueue = (items: BatchItem[]) =>
      queue.addBulk(
        items.map((item) => ({
          name: 'item',
          data: { ...job, item },
          opts: {
            jobId: jobIdOf(outDir, item.id),
            attempts: JOB_ATTEMPTS,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: true,
            removeOnFail: false,
          },
        })),
      );
    await enqueue(todo);
    const pending = new Set(todo.map((it) => it.id));
    while (pending.size > 0 && !options.signal?.aborted) {
      // Jobs in Redis, counted before the ledger is read: a job absent now either finished (its
      // ledger line was written before it left Redis) or was lost — a Redis restarted without
      // persistence. Fewer jobs than unfinished items: enqueue them again (existing ids add nothing).
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed');
      const inRedis = Object.values(counts).reduce((a, b) => a + b, 0);
      const ledger = await readLedger(outDir);
      for (const id of [...pending]) {
        const rec = ledger.get(id);
        if (!rec) continue;
        pending.delete(id);
        yield rec;
      }
      // Jobs that failed for good (every attempt): recorded as failed items.
      for (const failed of await queue.getFailed()) {
        const item = ids.get(failed.id ?? '');
        if (!item || !pending.has(item.id)) continue;
        pending.delete(item.id);
        const rec: ItemRecord = {
          item: item.id,
          results: [],
          errors: [{ item: item.id, error: { code: 'job', message: `job failed ${failed.attemptsMade} times: ${failed.failedReason}` } }],
        };
        writer.append(rec);
        yield rec;
      }
      if (pending.size > inRedis) {
        options.onLost?.(pending.size - inRedis);
        await enqueue([...pending].map((id) => byItem.get(id) as BatchItem));
      }
      if (pending.size > 0) await new Promise((res) => setTimeout(res, options.pollMs ?? 300));
    }
  } finally {
    writer.close();
    await queue.close();
  }
}

export interface QueueWorkerOptions {
  queue: string;
  queueName?: string;
  /** Worker threads, one model each; also the jobs taken at once (default: the cores). */
  workers?: number;
  /** How long a job's lock lasts without renewal before it counts as stalled and is taken again (ms, default 30000). */
  lockDuration?: number;
  onJob?: (event: 'done' | 'failed', item: string, error?: string) => void;
  signal?: AbortSignal;
  /** This worker's name in the queue (a job's `processedBy`); default HOST-PID. */
  name?: string;
}

/** Takes jobs until the signal aborts; the jobs in flight are finished first. */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<void> {
  const n = options.workers ?? cpus().length;
  options = { ...options, name: options.name ?? `${hostname()}-${process.pid}` };
  const pools = new Map<string, Promise<WorkerPool>>();
  const writers = new Map<string, Promise<LedgerWriter>>();
  // One pool per model and plan: submissions to other output folders reuse its threads and models.
  const poolFor = (data: ItemJob) => {
    const key = JSON.stringify([data.model, data.plan]);
    let p = pools.get(key);
    if (!p) {
      p = WorkerPool.start(n, data.model, data.plan, data.options);
      p.catch(() => pools.delete(key));
      pools.set(key, p);
    }
    return { key, pool: p };
  };
  const writerFor = (outDir: string) => {
    let w = writers.get(outDir);
    if (!w) {
      w = LedgerWriter.open(outDir);
      writers.set(outDir, w);
    }
    return w;
  };
  const worker = new Worker<ItemJob>(
    options.queueName ?? DEFAULT_QUEUE_NAME,
    async (job: Job<ItemJob>) => {
      const { key, pool } = poolFor(job.data);
      let record: ItemRecord;
      try {
        record = await (await pool).run(job.data.item, job.data.options);
      } catch (e) {
        // A crashed thread fails its pool: start a fresh one for the next attempt.
        if (!(e instanceof SegGradCamError)) {
          pools.delete(key);
          await (await pool).close();
        }
        throw e;
      }
      (await writerFor(job.data.options.outDir)).append(record);
      return { results: record.results.length, errors: record.errors.length };
    },
    {
      connection: connectionOf(options.queue),
      // As many jobs as the pool's threads hold (one computing, one being written, each).
      concurrency: n * ITEMS_PER_WORKER,
      name: options.name,
      lockDuration: options.lockDuration ?? 30000,
      // Stalled jobs are looked for as often as a lock can expire.
      stalledInterval: Math.min(30000, options.lockDuration ?? 30000),
      autorun: false,
    },
  );
  worker.on('completed', (job) => options.onJob?.('done', job.data.item.id));
  worker.on('failed', (job, err) => options.onJob?.('failed', job?.data.item.id ?? '?', err.message));
  worker.on('error', () => {}); // connection errors: ioredis reconnects
  const stopped = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  const running = worker.run();
  await stopped;
  await worker.close();
  await running;
  for (const p of pools.values()) await (await p.catch(() => undefined))?.close();
  for (const w of writers.values()) (await w).close();
}
