/**
 * Memory over many requests: after every item of a batch run, this thread's (and each worker
 * thread's) TF.js tensor count is back at the count after the first item — no tensor of an
 * image's forward pass, of its gradients or of its CAMs outlives the item. The RSS over 10,000
 * requests is a bench (bench/batch-memory.ts), not a test: wall-clock and RSS vary with the host.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { processItem } from '../src/batch/item.js';
import { readItems, type BatchItem } from '../src/batch/manifest.js';
import { checkPlan, openModel } from '../src/batch/model.js';
import type { BatchPlan } from '../src/batch/plan.js';
import { WorkerPool, type ThreadMemory } from '../src/batch/pool.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-memory-'));
let items: BatchItem[] = [];

// Every predicted object of every digit × two layers × three methods (a batched gradient CAM, a
// second gradient CAM and one with its own backward): ~12 requests per tile.
const plan: BatchPlan = {
  classes: 'present',
  ignoreClasses: ['0'],
  region: 'each-object',
  layers: ['bottleneck', 'dec2_relu2'],
  methods: ['seg-grad-cam', 'hires-cam', 'layer-cam'],
};

before(async () => {
  items = await readItems(await writeTiles(join(dir, 'tiles'), 30, { corrupt: [7] }));
});

test('in this thread: the tensor count after every item equals the count after the first (a few hundred requests)', async () => {
  const explainer = await openModel({ model: BATCH_MODEL });
  checkPlan(explainer, plan);
  const counts: number[] = [];
  let requests = 0;
  let failed = 0;
  try {
    for (const item of items) {
      const record = await processItem(explainer, item, plan, { outDir: join(dir, 'in-thread') });
      requests += record.results.length;
      failed += record.errors.length;
      counts.push(tf.memory().numTensors);
    }
  } finally {
    explainer.dispose();
  }
  assert.equal(failed, 1, 'the corrupt tile is the one error');
  assert.ok(requests >= 200, `only ${requests} requests`);
  const baseline = counts[0];
  assert.deepEqual(
    counts,
    counts.map(() => baseline),
    `tensor counts after each item: ${counts.join(' ')}`,
  );
});

test('in worker threads: each thread reports the same tensor count after every item', async () => {
  const pool = await WorkerPool.start(2, { model: BATCH_MODEL }, plan, { outDir: join(dir, 'pool') });
  const seen: ThreadMemory[][] = [[], []];
  pool.onMemory = (worker, memory) => seen[worker].push(memory);
  let records: Awaited<ReturnType<typeof pool.run>>[];
  try {
    records = await Promise.all(items.map((it) => pool.run(it)));
  } finally {
    await pool.close();
  }
  const requests = records.reduce((n, r) => n + r.results.length, 0);
  assert.ok(requests >= 200, `only ${requests} requests`);
  assert.equal(seen[0].length + seen[1].length, items.length);
  for (const counts of seen) {
    assert.ok(counts.length > 0, 'a worker took no item');
    const baseline = counts[0].numTensors;
    assert.deepEqual(
      counts.map((m) => m.numTensors),
      counts.map(() => baseline),
      `tensor counts after each item: ${counts.map((m) => m.numTensors).join(' ')}`,
    );
    // Same tensors, same bytes: no tensor was swapped for a bigger one.
    assert.equal(new Set(counts.map((m) => m.numBytes)).size, 1);
  }
});
