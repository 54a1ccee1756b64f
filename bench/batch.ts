/**
 * Batch throughput (not a test): items/s of `explainDataset` over synthetic tiles with 0 (this
 * thread), 1 and 2 worker threads, and the main thread's RSS at the end.
 * Run: node --import tsx bench/batch.ts [tiles=60]
 *
 * The committed context-reliance report (docs/batch-report/):
 *   node --import tsx bench/batch.ts report 1000 docs/batch-report
 * explains every digit object of the ground truth (gt-object, classes present but the background)
 * on 1000 held-out tiles with the biased base-8 U-Net, and copies the report files there.
 */
import { cpus, tmpdir } from 'node:os';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainDataset } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from '../test/batch-fixtures.js';

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
  for (const f of ['class-stats.md', 'class-stats.csv']) copyFileSync(join(work, 'out', f), join(dest, f));
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
const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-batch-'));
const manifest = await writeTiles(join(dir, 'tiles'), tiles);
console.log(`# batch: ${tiles} tiles, classes present but background, class-region, seg-grad-cam at the bottleneck`);
console.log(`# ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}, model ${BATCH_MODEL}, wasm`);
for (const workers of [0, 1, 2]) {
  const out = join(dir, `out-${workers}`);
  const t0 = performance.now();
  const it = explainDataset({
    model: BATCH_MODEL,
    input: manifest,
    outDir: out,
    workers,
    plan: { classes: 'present', ignoreClasses: ['0'], region: 'class-region' },
  });
  let r = await it.next();
  const first = performance.now();
  let n = 0;
  while (!r.done) {
    n++;
    r = await it.next();
  }
  const last = performance.now();
  const s = (last - t0) / 1000;
  const steady = (n - 1) / ((last - first) / 1000);
  console.log(
    `workers ${workers === 0 ? '0 (this thread)' : workers}: ${(tiles / s).toFixed(2)} items/s, ${(r.value.requests / s).toFixed(2)} requests/s steady ${steady.toFixed(2)} items/s after the first item (${s.toFixed(1)} s incl. model loading; RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB)`,
  );
}
rmSync(dir, { recursive: true, force: true });
