/**
 * Redis restarted in the middle of a queued run. The server is killed with SIGKILL (no shutdown
 * save) while two `seg-grad-cam worker` processes hold jobs, stays down longer than a job's lock,
 * and is started again on the same port (and folder). The submitter and the workers reconnect
 * (ioredis retries forever: maxRetriesPerRequest null) and the run completes: every result present
 * exactly once and equal to a local run's.
 *
 * - With an append-only file fsynced before every reply (`--appendonly yes --appendfsync always`),
 *   every job the server acknowledged is back after the restart.
 * - Without persistence the restarted server is empty; the submitter sees fewer jobs in Redis than
 *   unfinished items and enqueues those again (same job ids), so the run still completes.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import type { RequestResult } from '../src/batch/item.js';
import { readLedger } from '../src/batch/ledger.js';
import { connectionOf, DEFAULT_QUEUE_NAME } from '../src/batch/queue.js';
import { explainDataset, type DatasetOptions } from '../src/batch/run.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';
import { freePort, hasRedis, sleep, startRedis, startWorker } from './batch-redis.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-restart-'));
const children: ChildProcess[] = [];
const ITEMS = 16;
let manifest = '';
let local = '';
let ref: Awaited<ReturnType<typeof run>>;

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

before(async () => {
  if (!hasRedis) return;
  manifest = await writeTiles(join(dir, 'tiles'), ITEMS, { corrupt: [6] });
  local = join(dir, 'local');
  ref = await run({ outDir: local });
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A queued run during which Redis is SIGKILLed once some items are done, and restarted 3 s later. */
async function restartedRun(
  name: string,
  persistent: boolean,
): Promise<{ out: string; summary: Awaited<ReturnType<typeof run>>; doneAtKill: number; log: string }> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const redisDir = join(dir, `${name}-redis`);
  mkdirSync(redisDir);
  const redisOptions = { port, dir: persistent ? redisDir : undefined };
  let redis = await startRedis(redisOptions);
  children.push(redis);
  const queue = new Queue(DEFAULT_QUEUE_NAME, { connection: connectionOf(url) });
  await queue.waitUntilReady();
  await queue.close();
  const workers = [startWorker(url), startWorker(url)];
  children.push(...workers.map((w) => w.child));
  await Promise.all(workers.map((w) => w.name));

  const out = join(dir, name);
  const submitted = run({ outDir: out, queue: url });
  // Kill Redis once a few items are finished and most are not.
  let doneAtKill = 0;
  for (let k = 0; k < 1200; k++) {
    doneAtKill = (await readLedger(out)).size;
    if (doneAtKill >= 3) break;
    await sleep(50);
  }
  redis.kill('SIGKILL');
  await new Promise((res) => redis.once('exit', res));
  await sleep(3000); // longer than the workers' 2 s job locks
  redis = await startRedis(redisOptions);
  children.push(redis);
  const restarted = performance.now();
  const summary = await submitted;
  for (const w of workers) w.child.kill('SIGTERM');
  const log = workers.map((w, k) => `worker ${k}: ${w.done.join(', ')}`).join('; ');
  return { out, summary, doneAtKill, log: `${((performance.now() - restarted) / 1000).toFixed(1)} s from the restart to the end; ${log}` };
}

function assertSameAsLocal(out: string, summary: Awaited<ReturnType<typeof run>>) {
  assert.deepEqual({ ...summary, files: undefined }, { ...ref, files: undefined });
  const want = rows(local);
  const got = rows(out);
  assert.equal(got.length, 2 * (ITEMS - 1));
  assert.equal(new Set(got.map((r) => `${r.item} ${r.request}`)).size, got.length);
  assert.deepEqual(
    got.map((r) => ({ ...r, timings: undefined })),
    want.map((r) => ({ ...r, timings: undefined })),
  );
  for (const r of got) assert.ok(readFileSync(join(out, r.paths.cam)).equals(readFileSync(join(local, r.paths.cam))), r.paths.cam);
  assert.equal(readFileSync(join(out, 'errors.jsonl'), 'utf8'), readFileSync(join(local, 'errors.jsonl'), 'utf8'));
}

test(
  'Redis SIGKILLed mid-run with an fsynced append-only file, restarted: the run completes, every result once, equal to a local run',
  { skip: hasRedis ? false : 'redis-server is not installed', timeout: 600_000 },
  async (t) => {
    const { out, summary, doneAtKill, log } = await restartedRun('aof', true);
    t.diagnostic(`Redis killed with ${doneAtKill} of ${ITEMS} items in the ledger; ${log}`);
    assert.ok(doneAtKill < ITEMS, 'the run had finished before Redis was killed');
    assertSameAsLocal(out, summary);
  },
);

test(
  'Redis SIGKILLed mid-run without persistence, restarted empty: the lost jobs are enqueued again and the run completes',
  { skip: hasRedis ? false : 'redis-server is not installed', timeout: 600_000 },
  async (t) => {
    const { out, summary, doneAtKill, log } = await restartedRun('volatile', false);
    t.diagnostic(`Redis killed with ${doneAtKill} of ${ITEMS} items in the ledger; ${log}`);
    assert.ok(doneAtKill < ITEMS, 'the run had finished before Redis was killed');
    assertSameAsLocal(out, summary);
  },
);
