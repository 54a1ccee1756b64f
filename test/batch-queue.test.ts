/**
 * Many machines: two `seg-grad-cam worker` processes on a local redis-server take the jobs of a
 * `--queue` submission; one is killed with SIGKILL while it holds a job. Its job is taken again
 * (stalled-job handling) and every result is present exactly once, equal to a local run's.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import type { RequestResult } from '../src/batch/item.js';
import { connectionOf, DEFAULT_QUEUE_NAME } from '../src/batch/queue.js';
import { explainDataset, type DatasetOptions } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';
import { freePort, hasRedis, sleep, startRedis, startWorker as startWorkerProcess } from './batch-redis.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-queue-'));
const children: ChildProcess[] = [];
let url = '';
let manifest = '';

before(async () => {
  if (!hasRedis) return;
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  children.push(await startRedis({ port }));
  manifest = await writeTiles(join(dir, 'tiles'), 12, { corrupt: [4] });
  const q = new Queue(DEFAULT_QUEUE_NAME, { connection: connectionOf(url) });
  try {
    await q.waitUntilReady();
  } finally {
    await q.close();
  }
});

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** A worker process (one thread, 2 s job locks); resolves its queue name once started. */
function startWorker(): ReturnType<typeof startWorkerProcess> {
  const w = startWorkerProcess(url);
  children.push(w.child);
  return w;
}

async function run(options: Partial<DatasetOptions> & { outDir: string }) {
  const it = explainDataset({ model: BATCH_MODEL, input: manifest, plan: { classes: ['4', '0'], region: 'whole' }, ...options });
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

test(
  'two queue workers, one killed while it holds a job: every result once, equal to a local run',
  { skip: hasRedis ? false : 'redis-server is not installed' },
  async (t) => {
    const local = join(dir, 'local');
    const queued = join(dir, 'queued');
    const ref = await run({ outDir: local });

    const a = startWorker();
    const b = startWorker();
    const nameA = await a.name;
    await b.name;
    const submitted = run({ outDir: queued, queue: url });
    // Kill A once it holds a job (after it finished one, so the kill lands between or inside writes).
    const queue = new Queue(DEFAULT_QUEUE_NAME, { connection: connectionOf(url) });
    let killed = false;
    for (let k = 0; k < 600 && !killed; k++) {
      const active = await queue.getActive();
      if (a.done.length > 0 && active.some((j) => j.processedBy === nameA)) {
        a.child.kill('SIGKILL');
        killed = true;
      } else await sleep(50);
    }
    await queue.close();
    assert.ok(killed, 'worker A never held a job');
    t.diagnostic(`worker A finished ${a.done.length} jobs before it was killed holding another`);
    const summary = await submitted;
    b.child.kill('SIGTERM');

    assert.deepEqual({ ...summary, files: undefined }, { ...ref, files: undefined });
    const want = rows(local);
    const got = rows(queued);
    assert.equal(got.length, 22);
    assert.equal(new Set(got.map((r) => `${r.item} ${r.request}`)).size, got.length);
    assert.deepEqual(
      got.map((r) => ({ ...r, timings: undefined })),
      want.map((r) => ({ ...r, timings: undefined })),
    );
    for (const r of got) assert.ok(readFileSync(join(queued, r.paths.cam)).equals(readFileSync(join(local, r.paths.cam))), r.paths.cam);
    assert.equal(readFileSync(join(queued, 'errors.jsonl'), 'utf8'), readFileSync(join(local, 'errors.jsonl'), 'utf8'));
  },
);
