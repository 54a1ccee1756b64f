/**
 * Batch throughput (not a test): items/s of `explainDataset` over synthetic tiles with 0 (this
 * thread), 1 and 2 worker threads, and the main thread's RSS at the end.
 * Run: node --import tsx bench/batch.ts [tiles=60]
 */
import { cpus, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { explainDataset } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from '../test/batch-fixtures.js';

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
