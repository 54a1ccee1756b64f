/**
 * Resumable, exactly once: a CLI batch run over 40 requests (+ a corrupt image) killed with
 * SIGKILL at random points several times, then run again to the end, gives the same files as an
 * uninterrupted run — every request once in results.jsonl, every .npy and overlay byte-equal, no
 * temporary file left, each item once in the ledger.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { RequestResult } from '../src/batch/item.js';
import { readLedger } from '../src/batch/ledger.js';
import { explainDataset, type BatchProgress } from '../src/batch/run.js';
import { mulberry32 } from '../src/data/prng.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-resume-'));
const ITEMS = 41; // 40 tiles and one corrupt image
let manifest = '';
const args = (out: string) => [
  '--import',
  'tsx',
  'src/cli/run.ts',
  'batch',
  manifest,
  '-o',
  out,
  '-m',
  BATCH_MODEL,
  '--classes',
  '4',
  '--region',
  'whole',
  '--no-progress',
];

before(async () => {
  manifest = await writeTiles(join(dir, 'tiles'), ITEMS, { corrupt: [17] });
});

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
/** Lines in the ledger files so far (the items finished). */
function ledgerLines(out: string): number {
  let n = 0;
  if (!existsSync(join(out, 'ledger'))) return 0;
  for (const f of readdirSync(join(out, 'ledger'), { withFileTypes: true }).filter((d) => d.isFile()))
    n += readFileSync(join(out, 'ledger', f.name), 'utf8').split('\n').length - 1;
  return n;
}
const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n');
const withoutTimings = (l: string) => {
  const r = JSON.parse(l) as RequestResult;
  return JSON.stringify({ ...r, timings: undefined });
};

test('killed with SIGKILL several times, then resumed: every result once and equal to an uninterrupted run', async (t) => {
  const ref = join(dir, 'ref');
  const r = spawnSync(process.execPath, args(ref), { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /1 of 41 items failed/);

  const out = join(dir, 'killed');
  const rand = mulberry32(1234);
  const counts: number[] = [];
  // Kill once during start-up, then three times once the ledger holds about 8, 18 and 30 items
  // plus a random delay (0-150 ms), so a kill lands anywhere in an item's work or writes.
  for (const target of [0, 8, 18, 30]) {
    const child = spawn(process.execPath, args(out), { stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    const goal = target + Math.floor(rand() * 4);
    while (target > 0 && ledgerLines(out) < goal && child.exitCode === null) await sleep(10);
    await sleep(target > 0 ? 150 * rand() : 500 + 1000 * rand());
    child.kill('SIGKILL');
    await exited;
    counts.push((await readLedger(out)).size);
  }
  t.diagnostic(`ledger sizes after the kills: ${counts.join(', ')}`);
  // The kills interrupted runs (some items done, not all), and progress was kept between them.
  assert.ok(
    counts.some((n) => n > 0 && n < ITEMS),
    `ledger sizes after the kills: ${counts.join(', ')}`,
  );
  for (let k = 1; k < counts.length; k++) assert.ok(counts[k] >= counts[k - 1]);

  // The progress of a resumed run starts from the ledger.
  const stopped = new AbortController();
  stopped.abort();
  const events: BatchProgress[] = [];
  const it = explainDataset({
    model: BATCH_MODEL,
    input: manifest,
    outDir: out,
    plan: { classes: ['4'], region: 'whole' },
    signal: stopped.signal,
    onProgress: (p) => events.push(p),
  });
  while (!(await it.next()).done);
  const before = counts[counts.length - 1];
  assert.deepEqual(events[0], { total: ITEMS, done: before, resumed: before, failed: events[0].failed });

  const last = spawnSync(process.execPath, args(out), { encoding: 'utf8' });
  assert.equal(last.status, 3, last.stderr);

  const got = lines(join(out, 'results.jsonl'));
  const want = lines(join(ref, 'results.jsonl'));
  assert.equal(got.length, 40);
  assert.deepEqual(got.map(withoutTimings), want.map(withoutTimings));
  for (const l of got) {
    const row = JSON.parse(l) as RequestResult;
    assert.ok(readFileSync(join(out, row.paths.cam)).equals(readFileSync(join(ref, row.paths.cam))), row.paths.cam);
    assert.ok(readFileSync(join(out, row.paths.overlay)).equals(readFileSync(join(ref, row.paths.overlay))), row.paths.overlay);
  }
  assert.deepEqual(lines(join(out, 'errors.jsonl')), lines(join(ref, 'errors.jsonl')));
  // No partial or temporary file: every file in items/ is a listed output.
  const listed = new Set(got.flatMap((l) => Object.values((JSON.parse(l) as RequestResult).paths)));
  const files = readdirSync(join(out, 'items'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(out.length + 1));
  assert.deepEqual(files.sort(), [...listed].sort());
  assert.deepEqual(
    readdirSync(out).filter((n) => n.endsWith('.tmp')),
    [],
  );
  // Each item once in the ledger (over every process's file).
  const ids: string[] = [];
  for (const f of readdirSync(join(out, 'ledger')))
    for (const l of readFileSync(join(out, 'ledger', f), 'utf8')
      .split('\n')
      .slice(0, -1))
      ids.push((JSON.parse(l) as { item: string }).item);
  assert.equal(ids.length, ITEMS);
  assert.equal(new Set(ids).size, ITEMS);
  assert.ok(existsSync(join(out, 'summary.json')));
});
