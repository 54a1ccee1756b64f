/**
 * `explainDataset`: a batch run as an async iterator of item records. Items already in the
 * output folder's ledger are skipped (a run resumes where a killed one stopped); each finished
 * item's output files are renamed into place before its ledger line is written; at the end the
 * results, errors, summary and (with ground truth) per-class statistics are written from the
 * ledger, each atomically. See docs/batch.md.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { Explainer } from '../explain.js';
import { removeStaleTemps } from '../io/output-set.js';
import { writeOutputs } from '../io/output-set.js';
import { processItem, type ItemOptions, type ItemRecord, type RequestResult } from './item.js';
import { LedgerWriter, readLedger } from './ledger.js';
import { readItems, type BatchItem } from './manifest.js';
import { checkPlan, openModel, type ModelSpec } from './model.js';
import type { BatchPlan } from './plan.js';
import { WorkerPool, type ThreadMemory } from './pool.js';
import { CLASS_FIGURE_FILES, classStatsFigures } from './report-plots.js';
import { aggregateByClass, classStatsCsv, classStatsMarkdown, type ClassStats } from './stats.js';

export interface DatasetOptions extends ModelSpec {
  /** A folder of images or a manifest (.csv, .jsonl). */
  input: string;
  outDir: string;
  plan: BatchPlan;
  /** 0: in this thread (default); n: n worker threads, one model each. */
  workers?: number;
  /** Items dispatched but not finished, at most (default 2 per worker, 1 in this thread). */
  inFlight?: number;
  limitInputPixels?: number;
  /** Run again the items the ledger records as failed (default: they stay recorded). */
  retryFailed?: boolean;
  onProgress?: (p: BatchProgress) => void;
  /** Each thread's TF.js memory after each item (thread 0 = this thread, or worker k); for watching a long run for leaks. */
  onMemory?: (thread: number, memory: ThreadMemory) => void;
  signal?: AbortSignal;
  /** redis://host:port: enqueue the items for `seg-grad-cam worker` processes instead of running them here (see queue.ts). */
  queue?: string;
  queueName?: string;
  /** Queue runs: how often the ledger is read for finished items (ms, default 300). */
  pollMs?: number;
}

export interface BatchProgress {
  total: number;
  /** Items finished, including those found in the ledger at the start. */
  done: number;
  /** Of these, items with at least one error. */
  failed: number;
  /** Items found finished in the ledger at the start. */
  resumed: number;
}

export interface BatchSummary {
  items: number;
  /** Items finished (in the ledger). */
  done: number;
  /** Items with an error (of the image or of a request). */
  failedItems: number;
  requests: number;
  failedRequests: number;
  /** Items not run (the run was aborted). */
  remaining: number;
  plan: BatchPlan;
  model: string;
  files: { results: string; errors: string; stats?: string; report?: string; figures?: string[] };
  classes?: ClassStats[];
}

export const RESULTS_FILE = 'results.jsonl';
export const ERRORS_FILE = 'errors.jsonl';
export const SUMMARY_FILE = 'summary.json';
export const STATS_CSV = 'class-stats.csv';
export const STATS_MD = 'class-stats.md';

/** Something that explains one item: this thread's Explainer or a worker pool. */
interface Runner {
  run(item: BatchItem): Promise<ItemRecord>;
  close(): Promise<void>;
  slots: number;
}

/** The model part of the options, absolute paths (workers elsewhere resolve nothing against our cwd). */
function modelSpec(options: DatasetOptions): ModelSpec {
  return {
    model: resolve(options.model),
    labels: options.labels === undefined ? undefined : resolve(options.labels),
    inputRange: options.inputRange,
    output: options.output,
    backend: options.backend,
  };
}

async function openRunner(options: DatasetOptions, itemOptions: ItemOptions): Promise<Runner> {
  const spec: ModelSpec = modelSpec(options);
  if ((options.workers ?? 0) > 0) {
    const pool = await WorkerPool.start(options.workers as number, spec, options.plan, itemOptions);
    pool.onMemory = options.onMemory;
    return { run: (item) => pool.run(item), close: () => pool.close(), slots: pool.size };
  }
  const explainer: Explainer = await openModel(spec);
  checkPlan(explainer, options.plan);
  const run = async (item: BatchItem) => {
    const record = await processItem(explainer, item, options.plan, itemOptions);
    if (options.onMemory) {
      const { numTensors, numBytes } = tf.memory();
      options.onMemory(0, { numTensors, numBytes });
    }
    return record;
  };
  return { run, close: async () => explainer.dispose(), slots: 1 };
}

/** Removes temporary files left by killed processes in the output folder and every item folder. */
export async function sweepTemps(outDir: string): Promise<void> {
  await removeStaleTemps(outDir);
  const items = join(outDir, 'items');
  for (const d of await readdir(items, { withFileTypes: true }).catch(() => []))
    if (d.isDirectory()) await removeStaleTemps(join(items, d.name));
}

/**
 * Runs the dataset; yields each item's record as it finishes (completion order). Its return value
 * (the iterator's last `next()`) is the summary, also written to summary.json.
 */
export async function* explainDataset(options: DatasetOptions): AsyncGenerator<ItemRecord, BatchSummary> {
  const outDir = resolve(options.outDir);
  const items = await readItems(options.input);
  const ledger = await readLedger(outDir);
  const finished = (it: BatchItem) => {
    const rec = ledger.get(it.id);
    return rec !== undefined && !(options.retryFailed && rec.errors.length > 0);
  };
  const todo = items.filter((it) => !finished(it));
  const progress: BatchProgress = { total: items.length, done: items.length - todo.length, failed: 0, resumed: items.length - todo.length };
  for (const it of items) if (finished(it) && (ledger.get(it.id)?.errors.length ?? 0) > 0) progress.failed++;
  options.onProgress?.({ ...progress });

  if (todo.length > 0 && !options.signal?.aborted && options.queue) {
    // The plan is checked against the model here, before anything is enqueued or written.
    const explainer = await openModel(modelSpec(options));
    try {
      checkPlan(explainer, options.plan);
    } finally {
      explainer.dispose();
    }
    await mkdir(outDir, { recursive: true });
    await sweepTemps(outDir);
    const job = { model: modelSpec(options), plan: options.plan, options: { outDir, limitInputPixels: options.limitInputPixels } };
    // BullMQ is loaded only for queued runs.
    const { submitAndFollow } = await import('./queue.js');
    for await (const record of submitAndFollow(todo, job, { ...options, queue: options.queue })) {
      progress.done++;
      if (record.errors.length > 0) progress.failed++;
      options.onProgress?.({ ...progress });
      yield record;
    }
  } else if (todo.length > 0 && !options.signal?.aborted) {
    // The model and the plan are checked before anything is written.
    const runner = await openRunner(options, { outDir, limitInputPixels: options.limitInputPixels });
    await mkdir(outDir, { recursive: true }).catch(async (e: Error) => {
      await runner.close();
      throw new SegGradCamError(`cannot create the output folder ${outDir}: ${e.message}`, 'file');
    });
    await sweepTemps(outDir);
    const writer = await LedgerWriter.open(outDir);
    try {
      const limit = Math.max(1, options.inFlight ?? (options.workers ? 2 * runner.slots : 1));
      const running = new Map<number, Promise<{ k: number; record: ItemRecord }>>();
      let next = 0;
      while (next < todo.length || running.size > 0) {
        while (running.size < limit && next < todo.length && !options.signal?.aborted) {
          const k = next++;
          running.set(
            k,
            runner.run(todo[k]).then((record) => ({ k, record })),
          );
        }
        if (running.size === 0) break;
        const { k, record } = await Promise.race(running.values());
        running.delete(k);
        writer.append(record);
        progress.done++;
        if (record.errors.length > 0) progress.failed++;
        options.onProgress?.({ ...progress });
        yield record;
      }
    } finally {
      writer.close();
      await runner.close();
    }
  }
  return finalizeDataset(outDir, items, options.plan, options.model);
}

/** Writes results.jsonl, errors.jsonl, summary.json and the class statistics from the ledger (input order, then request order). */
export async function finalizeDataset(outDir: string, items: BatchItem[], plan: BatchPlan, model: string): Promise<BatchSummary> {
  const ledger = await readLedger(outDir);
  const results: RequestResult[] = [];
  const errors: unknown[] = [];
  let done = 0;
  let failedItems = 0;
  for (const it of items) {
    const rec = ledger.get(it.id);
    if (!rec) continue;
    done++;
    if (rec.errors.length > 0) failedItems++;
    results.push(...rec.results);
    errors.push(...rec.errors);
  }
  const jsonl = (rows: unknown[]) => Buffer.from(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const withStats = results.some((r) => r.stats);
  const classes = withStats ? aggregateByClass(results) : undefined;
  const summary: BatchSummary = {
    items: items.length,
    done,
    failedItems,
    requests: results.length + errors.filter((e) => (e as { request?: string }).request !== undefined).length,
    failedRequests: errors.filter((e) => (e as { request?: string }).request !== undefined).length,
    remaining: items.length - done,
    plan,
    model,
    files: {
      results: RESULTS_FILE,
      errors: ERRORS_FILE,
      ...(classes ? { stats: STATS_CSV, report: STATS_MD, figures: CLASS_FIGURE_FILES } : {}),
    },
    ...(classes ? { classes } : {}),
  };
  const figures = classes ? classStatsFigures(classes) : [];
  await mkdir(outDir, { recursive: true });
  await writeOutputs([
    ...figures.map((f) => ({ path: join(outDir, f.file), bytes: f.bytes })),
    { path: join(outDir, RESULTS_FILE), bytes: jsonl(results) },
    { path: join(outDir, ERRORS_FILE), bytes: jsonl(errors) },
    ...(classes
      ? [
          { path: join(outDir, STATS_CSV), bytes: Buffer.from(classStatsCsv(classes)) },
          { path: join(outDir, STATS_MD), bytes: Buffer.from(classStatsMarkdown(classes, plan.iouThreshold ?? 0.5, figures)) },
        ]
      : []),
    { path: join(outDir, SUMMARY_FILE), bytes: Buffer.from(`${JSON.stringify(summary, null, 2)}\n`) },
  ]);
  return summary;
}
