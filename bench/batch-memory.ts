/**
 * Memory over a long batch run (not a test): ≥ 10,000 requests through `explainDataset`, in this
 * thread and in a pool of worker threads, sampling the process RSS (worker threads included) and
 * every thread's TF.js tensor count after each item. Prints start (after the first item), peak and
 * end RSS, and the RSS slope (least squares over the second half of the run, MB per 1,000
 * requests), and whether any thread's tensor count ever left its value after its first item.
 *
 * Run: nice -n 10 node --import tsx bench/batch-memory.ts [requests=10000] [modes=0,2]
 *   modes: worker counts, 0 = this thread.
 * Requests per tile: all 11 classes × region `whole` × seg-grad-cam and hires-cam = 22, so
 * 10,000 requests are 455 tiles (64x64) of the synthetic set, each with its PNG and .npy written.
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { explainDataset } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from '../test/batch-fixtures.js';

const requests = Number(process.argv[2] ?? 10000);
const modes = (process.argv[3] ?? '0,2').split(',').map(Number);
const CLASSES = Array.from({ length: 11 }, (_, k) => String(k));
const METHODS = ['seg-grad-cam', 'hires-cam'];
const perTile = CLASSES.length * METHODS.length;
const tiles = Math.ceil(requests / perTile);
const mb = (b: number) => b / 2 ** 20;

const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-batch-memory-'));
const manifest = await writeTiles(join(dir, 'tiles'), tiles);
console.log(`# batch memory: ${tiles} tiles × ${perTile} requests = ${tiles * perTile} requests per mode, model ${BATCH_MODEL}, wasm`);
console.log(
  `# ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

for (const workers of modes) {
  const samples: Array<{ requests: number; rss: number }> = [];
  const tensors = new Map<number, number[]>();
  let done = 0;
  const t0 = performance.now();
  const it = explainDataset({
    model: BATCH_MODEL,
    input: manifest,
    outDir: join(dir, `out-${workers}`),
    workers,
    plan: { classes: CLASSES, region: 'whole', methods: METHODS },
    onMemory: (thread, m) => {
      const list = tensors.get(thread) ?? [];
      list.push(m.numTensors);
      tensors.set(thread, list);
    },
  });
  for (let r = await it.next(); !r.done; r = await it.next()) {
    done += r.value.results.length;
    samples.push({ requests: done, rss: mb(process.memoryUsage().rss) });
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss = samples.map((s) => s.rss);
  const half = samples.slice(Math.floor(samples.length / 2));
  const perK = slope(
    half.map((s) => s.requests / 1000),
    half.map((s) => s.rss),
  );
  const perKAll = slope(
    samples.map((s) => s.requests / 1000),
    rss,
  );
  const threads = [...tensors.entries()].map(([k, c]) => {
    const moved = c.filter((v) => v !== c[0]).length;
    return `thread ${k}: ${c.length} items, tensors ${c[0]} after the first, ${Math.min(...c)}–${Math.max(...c)} over the run${moved ? ` (${moved} items differ)` : ', unchanged'}`;
  });
  console.log(
    `workers ${workers === 0 ? '0 (this thread)' : workers}: ${done} requests in ${seconds.toFixed(0)} s; RSS start ${rss[0].toFixed(0)} MB, peak ${Math.max(...rss).toFixed(0)} MB, end ${rss[rss.length - 1].toFixed(0)} MB; slope ${perK.toFixed(2)} MB per 1000 requests over the second half (${perKAll.toFixed(2)} over the whole run); load ${loadavg()[0].toFixed(2)}`,
  );
  for (const t of threads) console.log(`  ${t}`);
  // 20 evenly spaced samples, for a plot by hand.
  const step = Math.max(1, Math.floor(samples.length / 20));
  console.log(
    `  RSS MB at requests: ${samples
      .filter((_, i) => i % step === 0 || i === samples.length - 1)
      .map((s) => `${s.requests}:${s.rss.toFixed(0)}`)
      .join(' ')}`,
  );
  rmSync(join(dir, `out-${workers}`), { recursive: true, force: true });
}
rmSync(dir, { recursive: true, force: true });
