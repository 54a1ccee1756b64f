/**
 * Batch throughput (not a test): steady items/s of `explainDataset` over synthetic tiles in this
 * thread, with 1 and 2 worker threads, and with 2 queue workers (`seg-grad-cam worker` processes
 * of one thread each on a redis-server the bench starts on a loopback port), timed in turns (one
 * run of each per turn, so a shared machine's drift hits all alike); medians over the turns, with
 * the machine and its load. Then the PyTorch comparison (bench/batch-torch.ts) when Debian's
 * /usr/bin/python3 has torch.
 * Run: nice -n 10 node --import tsx bench/batch.ts [tiles=60] [turns=3]
 *
 * Steady rate: items after the first result of each thread, over the time from that result to the
 * last, so model loading (per thread, per run) is not counted.
 *
 * The committed context-reliance report (docs/batch-report/):
 *   node --import tsx bench/batch.ts report 1000 docs/batch-report
 * explains every digit object of the ground truth (gt-object, classes present but the background)
 * on 1000 held-out tiles with the biased base-8 U-Net, and copies the report files there.
 */
import type { ChildProcess } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainDataset } from '../src/batch/run.js';
import { BATCH_MODEL as DEFAULT_BATCH_MODEL, writeTiles } from '../test/batch-fixtures.js';
import { freePort, hasRedis, startRedis, startWorker } from '../test/batch-redis.js';
import { torchComparison } from './batch-torch.js';
import { machineLine, median } from './timing.js';

/** The model (BENCH_BATCH_MODEL: e.g. fixtures/onnx/unet-small.onnx for ONNX Runtime, one intra-op thread per worker). */
const BATCH_MODEL = process.env.BENCH_BATCH_MODEL ?? DEFAULT_BATCH_MODEL;

if (process.argv[2] === 'report') {
  const n = Number(process.argv[3] ?? 1000);
  const dest = process.argv[4] ?? 'docs/batch-report';
  const work = mkdtempSync(join(tmpdir(), 'sgc-batch-report-'));
  const input = await writeTiles(join(work, 'tiles'), n);
  const t0 = performance.now();
  const it = explainDataset({
    model: BATCH_MODEL,
    input,
    outDir: join(work, 'out'),
    workers: Number(process.env.WORKERS ?? 0),
    plan: { classes: 'present', ignoreClasses: ['0'], region: 'gt-object' },
  });
  let r = await it.next();
  while (!r.done) r = await it.next();
  mkdirSync(dest, { recursive: true });
  for (const f of ['class-stats.md', 'class-stats.csv', ...(r.value.files.figures ?? [])])
    copyFileSync(join(work, 'out', f), join(dest, f));
  const { classes: _c, ...summary } = r.value;
  writeFileSync(
    join(dest, 'run.json'),
    `${JSON.stringify({ command: `node --import tsx bench/batch.ts report ${n} ${dest}`, tiles: `TextureMNIST-like held-out tiles 0..${n - 1}, seed 7, 64x64`, seconds: (performance.now() - t0) / 1000, summary }, null, 2)}\n`,
  );
  rmSync(work, { recursive: true, force: true });
  console.log(`report of ${r.value.requests} requests on ${n} tiles → ${dest}`);
  process.exit(0);
}

const tiles = Number(process.argv[2] ?? 60);
const turns = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-batch-'));
const manifest = await writeTiles(join(dir, 'tiles'), tiles);
const plan = { classes: 'present' as const, ignoreClasses: ['0'], region: 'class-region' as const };
console.log(`# batch throughput: ${tiles} tiles (64x64), classes present but the background, class-region, seg-grad-cam at the bottleneck`);
console.log(
  `# model ${BATCH_MODEL} on ${/\.onnx$/i.test(BATCH_MODEL) ? 'ONNX Runtime (worker threads: cores / workers intra-op threads each)' : 'tfjs-wasm (SIMD, one thread per model)'}; ${turns} turns, medians`,
);
console.log(`# ${machineLine()}`);

// Two queue workers (one thread each) on a private redis-server, started once for every turn.
const children: ChildProcess[] = [];
let queueUrl = '';
if (hasRedis) {
  const port = await freePort();
  queueUrl = `redis://127.0.0.1:${port}`;
  children.push(await startRedis({ port }));
  const workers = [startWorker(queueUrl, 30000), startWorker(queueUrl, 30000)];
  children.push(...workers.map((w) => w.child));
  await Promise.all(workers.map((w) => w.name));
} else console.log('# 2 queue workers: skipped (no /usr/bin/redis-server)');

interface Mode {
  label: string;
  workers: number;
  /** Threads that each load a model: the first result of each is not counted. */
  threads: number;
  queue?: string;
}
const modes: Mode[] = [
  { label: 'this thread', workers: 0, threads: 1 },
  { label: '1 worker thread', workers: 1, threads: 1 },
  { label: '2 worker threads', workers: 2, threads: 2 },
  ...(queueUrl ? [{ label: '2 queue workers', workers: 0, threads: 2, queue: queueUrl }] : []),
];

/** One run: steady items/s, requests/s, and the wall time including model loading. */
async function once(mode: Mode, out: string): Promise<{ items: number; requests: number; seconds: number }> {
  const t0 = performance.now();
  const it = explainDataset({
    model: BATCH_MODEL,
    input: manifest,
    outDir: out,
    workers: mode.workers,
    queue: mode.queue,
    pollMs: 50,
    plan,
  });
  const at: number[] = [];
  const reqs: number[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) {
    at.push(performance.now());
    reqs.push(r.value.results.length);
  }
  const k = Math.min(mode.threads, at.length) - 1;
  const span = (at[at.length - 1] - at[k]) / 1000;
  const requests = reqs.slice(k + 1).reduce((a, b) => a + b, 0);
  return { items: (at.length - 1 - k) / span, requests: requests / span, seconds: (performance.now() - t0) / 1000 };
}

const rates = new Map<string, Array<{ items: number; requests: number; seconds: number }>>(modes.map((m) => [m.label, []]));
for (let turn = 0; turn < turns; turn++) {
  for (const mode of modes) {
    const out = join(dir, `out-${turn}-${mode.label.replace(/\W+/g, '-')}`);
    rates.get(mode.label)?.push(await once(mode, out));
    rmSync(out, { recursive: true, force: true });
  }
  console.log(`# turn ${turn + 1} of ${turns} done, load ${loadavg()[0].toFixed(1)}`);
}
const med = (label: string, key: 'items' | 'requests' | 'seconds') => median((rates.get(label) ?? []).map((r) => r[key]));
console.log('| mode | items/s (median) | requests/s | each turn, items/s | wall s incl. model loading |');
console.log('|---|---:|---:|---|---:|');
for (const m of modes)
  console.log(
    `| ${m.label} | ${med(m.label, 'items').toFixed(2)} | ${med(m.label, 'requests').toFixed(2)} | ${(rates.get(m.label) ?? []).map((r) => r.items.toFixed(2)).join(', ')} | ${med(m.label, 'seconds').toFixed(1)} |`,
  );
const ratio = (a: string, b: string) => {
  const pa = rates.get(a) ?? [];
  const pb = rates.get(b) ?? [];
  return `${(med(a, 'items') / med(b, 'items')).toFixed(2)}x (per turn: ${pa.map((r, i) => (r.items / pb[i].items).toFixed(2)).join(', ')})`;
};
console.log(`2 worker threads / 1 worker thread: ${ratio('2 worker threads', '1 worker thread')}`);
if (queueUrl) console.log(`2 queue workers / 1 worker thread: ${ratio('2 queue workers', '1 worker thread')}`);
console.log(`# ${machineLine()} (at the end)`);
for (const c of children) c.kill(c.spawnfile.includes('redis') ? 'SIGKILL' : 'SIGTERM');
rmSync(dir, { recursive: true, force: true });

await torchComparison(tiles, turns);
