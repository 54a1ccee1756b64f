/** The worker pool (one model per thread) gives the same files as one thread, and bounds the items in flight. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { RequestResult } from '../src/batch/item.js';
import { readItems } from '../src/batch/manifest.js';
import { WorkerPool } from '../src/batch/pool.js';
import { explainDataset, type DatasetOptions } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-pool-'));
let manifest = '';

before(async () => {
  manifest = await writeTiles(join(dir, 'tiles'), 8, { corrupt: [5] });
});

async function run(options: Omit<DatasetOptions, 'model' | 'input' | 'plan'>) {
  const it = explainDataset({
    model: BATCH_MODEL,
    input: manifest,
    plan: { classes: 'present', ignoreClasses: ['0'], region: 'class-region', methods: ['seg-grad-cam', 'layer-cam'] },
    ...options,
  });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

const rows = (out: string) =>
  readFileSync(join(out, 'results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RequestResult);

test('two worker threads write the same results, CAMs and overlays as this thread', async () => {
  const one = join(dir, 'one');
  const two = join(dir, 'two');
  const s1 = await run({ outDir: one });
  // In flight: at most 2 items (one per worker): the pool never holds more decoded images.
  const s2 = await run({ outDir: two, workers: 2, inFlight: 2 });
  assert.equal(s1.failedItems, 1);
  assert.deepEqual({ ...s2 }, { ...s1 });
  const a = rows(one);
  const b = rows(two);
  assert.ok(a.length >= 14, `${a.length} requests`);
  assert.deepEqual(
    b.map((r) => ({ ...r, timings: undefined })),
    a.map((r) => ({ ...r, timings: undefined })),
  );
  for (const r of a) {
    assert.ok(readFileSync(join(one, r.paths.cam)).equals(readFileSync(join(two, r.paths.cam))), r.paths.cam);
    assert.ok(readFileSync(join(one, r.paths.overlay)).equals(readFileSync(join(two, r.paths.overlay))), r.paths.overlay);
  }
  assert.equal(readFileSync(join(one, 'errors.jsonl'), 'utf8'), readFileSync(join(two, 'errors.jsonl'), 'utf8'));
});

test('a bad plan is refused by the workers before anything is written', async () => {
  await assert.rejects(
    (async () => {
      const it = explainDataset({
        model: BATCH_MODEL,
        input: manifest,
        outDir: join(dir, 'bad'),
        workers: 2,
        plan: { classes: ['3'], region: 'whole', layers: ['no_such_layer'] },
      });
      await it.next();
    })(),
    /unknown layer 'no_such_layer'/,
  );
  assert.throws(() => readFileSync(join(dir, 'bad', 'summary.json')));
});

test('a worker holds 2 items (it computes one while the last one is written); items go to the worker holding the fewest', async () => {
  const items = (await readItems(manifest)).slice(0, 4);
  const plan = { classes: 'present' as const, ignoreClasses: ['0'], region: 'class-region' as const };
  const pool = await WorkerPool.start(2, { model: BATCH_MODEL }, plan, { outDir: join(dir, 'held') });
  try {
    const runs = [pool.run(items[0]), pool.run(items[1])];
    assert.deepEqual(pool.held(), [1, 1]);
    runs.push(pool.run(items[2]), pool.run(items[3]), pool.run(items[0], { outDir: join(dir, 'held2') }));
    // Two each; the fifth waits in this thread.
    assert.deepEqual(pool.held(), [2, 2]);
    const records = await Promise.all(runs);
    assert.deepEqual(
      records.map((r) => r.item),
      [0, 1, 2, 3, 0].map((k) => items[k].id),
    );
    assert.deepEqual(pool.held(), [0, 0]);
  } finally {
    await pool.close();
  }
});
