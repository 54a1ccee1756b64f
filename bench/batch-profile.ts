/**
 * Where the batch path's scaling goes (not a test): per-thread CPU accounting of `explainDataset`
 * with 1 and 2 worker threads, beside the compute ceiling — the same per-item work in 1 and 2
 * threads without the batch plumbing (bench/batch-ceiling-worker.ts) — and a scalar arithmetic
 * loop. Figures that hold under load (see bench/thread-cpu.ts): each worker's CPU ms per item and
 * the shares of wall time it ran, waited for a CPU (other load) and slept (starved by the batch
 * path: messages, file writes); the main thread's event-loop utilisation and CPU per item; the
 * other threads' (V8's GC helpers, libuv's file-system pool) CPU per item; the machine's busy
 * share over the window (/proc/stat, all processes).
 *
 * Run: nice -n 10 node --import tsx bench/batch-profile.ts [tiles=200] [turns=3] [modes=batch,ceiling,pure]
 * With BEFORE_SRC=<a copy of another commit's src/> and the mode `before`, that copy's
 * explainDataset runs too, in the same turns (e.g. `git archive HEAD~3 src | tar -x -C .before`).
 * Steady window: batch runs from the 2N-th result to the last (model loading and warm-up left
 * out); ceiling threads load and warm up (3 items) before the window.
 */
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { readItems } from '../src/batch/manifest.js';
import { explainDataset } from '../src/batch/run.js';
import type { BatchPlan } from '../src/batch/plan.js';
import { BATCH_MODEL, writeTiles } from '../test/batch-fixtures.js';
import type { FromCeiling, ToCeiling } from './batch-ceiling-worker.js';
import { delta, machineCpu, snapshot, type ThreadTimes } from './thread-cpu.js';
import { machineLine, median } from './timing.js';

const tiles = Number(process.argv[2] ?? 200);
const turns = Number(process.argv[3] ?? 3);
const kinds = (process.argv[4] ?? 'batch,ceiling,pure').split(',');
const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-batch-profile-'));
const manifest = await writeTiles(join(dir, 'tiles'), tiles);
const plan: BatchPlan = { classes: 'present', ignoreClasses: ['0'], region: 'class-region' };
const model = { model: resolve(BATCH_MODEL) };

/** What one window measured. */
interface Window {
  items: number;
  wallMs: number;
  /** The N busiest threads but the main one (the workers' JS threads), each. */
  workers: ThreadTimes[];
  main: ThreadTimes;
  /** Every other thread, summed. */
  other: ThreadTimes;
  elu?: EventLoopUtilization;
  /** Share of the machine's CPU time busy over the window (all processes). */
  machineBusy: number;
  /** Mean bytes of an item's record (what a worker posts back), as JSON. */
  recordBytes?: number;
}

function account(n: number, before: Map<number, ThreadTimes>, m0: { busy: number; total: number }, items: number, wallMs: number): Window {
  const d = delta(before, snapshot());
  const m1 = machineCpu();
  const main = d.get(process.pid) ?? { run: 0, wait: 0, blocks: 0 };
  d.delete(process.pid);
  const sorted = [...d.values()].sort((a, b) => b.run - a.run);
  if (process.env.PROFILE_THREADS)
    console.log(
      `# threads (${items} items): ${[...d.entries()]
        .filter(([, t]) => t.run > 0)
        .sort((a, b) => b[1].run - a[1].run)
        .map(([tid, t]) => `${tid} ${(t.run / 1e6).toFixed(0)} ms/${t.blocks}`)
        .join(', ')}`,
    );
  const workers = sorted.slice(0, n);
  const other = sorted
    .slice(n)
    .reduce((a, t) => ({ run: a.run + t.run, wait: a.wait + t.wait, blocks: a.blocks + t.blocks }), { run: 0, wait: 0, blocks: 0 });
  return { items, wallMs, workers, main, other, machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total) };
}

type Run = typeof explainDataset;
const before: Run | undefined = process.env.BEFORE_SRC
  ? ((await import(resolve(process.env.BEFORE_SRC, 'batch/run.ts'))) as { explainDataset: Run }).explainDataset
  : undefined;

async function batch(n: number, turn: number, run: Run = explainDataset): Promise<Window> {
  const out = join(dir, `out-${turn}-${n}`);
  const it = run({ model: BATCH_MODEL, input: manifest, outDir: out, workers: n, plan });
  let k = 0;
  let start: { t: number; s: Map<number, ThreadTimes>; m: { busy: number; total: number }; elu: EventLoopUtilization } | undefined;
  let bytes = 0;
  let w: Window | undefined;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    k++;
    if (start) bytes += JSON.stringify(r.value).length;
    if (k === 2 * n) start = { t: performance.now(), s: snapshot(), m: machineCpu(), elu: performance.eventLoopUtilization() };
    if (k === tiles && start) {
      w = account(n, start.s, start.m, k - 2 * n, performance.now() - start.t);
      w.elu = performance.eventLoopUtilization(start.elu);
    }
  }
  rmSync(out, { recursive: true, force: true });
  if (!w) throw new Error('too few tiles');
  w.recordBytes = bytes / w.items;
  return w;
}

function spawnCeiling(): Worker {
  const entry = new URL('./batch-ceiling-worker.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`, {
    eval: true,
  });
}

const next = (w: Worker) => new Promise<FromCeiling>((res, rej) => (w.once('message', res), w.once('error', rej)));

async function ceiling(n: number, kind: 'explain' | 'pure'): Promise<Window> {
  const items = (await readItems(manifest)).map((i) => ({ ...i, image: resolve(i.image), mask: i.mask && resolve(i.mask) }));
  const threads = Array.from({ length: n }, spawnCeiling);
  const ready = threads.map(next);
  for (const w of threads) w.postMessage({ type: 'init', model, plan, items, warmup: kind === 'pure' ? 0 : 3 } satisfies ToCeiling);
  await Promise.all(ready);
  const count = Math.floor(tiles / n);
  const s = snapshot();
  const m = machineCpu();
  const t0 = performance.now();
  const done = threads.map(next);
  for (const w of threads) w.postMessage({ type: 'go', count, kind } satisfies ToCeiling);
  await Promise.all(done);
  const w = account(n, s, m, count * n, performance.now() - t0);
  await Promise.all(threads.map((t) => t.terminate()));
  return w;
}

const results = new Map<string, Window[]>();
const add = (label: string, w: Window) => results.set(label, [...(results.get(label) ?? []), w]);
console.log(`# batch profile: ${tiles} tiles, class-region of every class present but 0, seg-grad-cam at the bottleneck, ${turns} turns`);
console.log(`# ${machineLine()}`);
for (let turn = 0; turn < turns; turn++) {
  for (const n of [1, 2]) {
    if (kinds.includes('before') && before) add(`before ${n}`, await batch(n, turn, before));
    if (kinds.includes('batch')) add(`batch ${n}`, await batch(n, turn));
    if (kinds.includes('ceiling')) add(`ceiling ${n}`, await ceiling(n, 'explain'));
    if (kinds.includes('pure')) add(`pure ${n}`, await ceiling(n, 'pure'));
  }
  console.log(`# turn ${turn + 1} of ${turns}, load ${loadavg()[0].toFixed(1)}`);
}

const ms = (ns: number) => ns / 1e6;
const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
console.log(
  '| mode | items/s | worker CPU ms/item | worker run / wait / sleep | worker blocks/item | main CPU ms/item | main ELU | other threads CPU ms/item | machine busy | record B |',
);
console.log('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
const row = new Map<string, { rate: number; cpu: number }>();
for (const [label, ws] of results) {
  const rate = median(ws.map((w) => (1000 * w.items) / w.wallMs));
  const cpu = median(ws.map((w) => ms(w.workers.reduce((a, t) => a + t.run, 0)) / w.items));
  const run = median(ws.map((w) => w.workers.reduce((a, t) => a + ms(t.run), 0) / w.workers.length / w.wallMs));
  const wait = median(ws.map((w) => w.workers.reduce((a, t) => a + ms(t.wait), 0) / w.workers.length / w.wallMs));
  const blocks = median(ws.map((w) => w.workers.reduce((a, t) => a + t.blocks, 0) / w.items));
  row.set(label, { rate, cpu });
  console.log(
    `| ${label} | ${rate.toFixed(1)} | ${cpu.toFixed(1)} | ${pct(run)} / ${pct(wait)} / ${pct(1 - run - wait)} | ${blocks.toFixed(1)} | ${median(ws.map((w) => ms(w.main.run) / w.items)).toFixed(2)} | ${ws[0].elu ? median(ws.map((w) => w.elu?.utilization ?? 0)).toFixed(3) : '—'} | ${median(ws.map((w) => ms(w.other.run) / w.items)).toFixed(2)} | ${pct(median(ws.map((w) => w.machineBusy)))} | ${ws[0].recordBytes ? median(ws.map((w) => w.recordBytes ?? 0)).toFixed(0) : '—'} |`,
  );
}
for (const k of ['before', 'batch', 'ceiling', 'pure']) {
  const a = row.get(`${k} 1`);
  const b = row.get(`${k} 2`);
  if (a && b)
    console.log(
      `${k}: 2 threads / 1 = ${(b.rate / a.rate).toFixed(2)}x items/s; CPU per item ${a.cpu.toFixed(1)} → ${b.cpu.toFixed(1)} ms (${(b.cpu / a.cpu).toFixed(2)}x)`,
    );
}
console.log(`# ${machineLine()} (at the end)`);
rmSync(dir, { recursive: true, force: true });
