/** A worker thread's writer of an item's files keeps output-set's promises: all or none, modes kept, no temporary left. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeItemFiles } from '../src/batch/item-files.js';
import { SegGradCamError } from '../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'sgc-batch-item-files-'));
const bytes = (s: string) => new TextEncoder().encode(s);
const isError = (code: string, re: RegExp) => (e: unknown) => e instanceof SegGradCamError && e.code === code && re.test(e.message);

test('writes every file in a new folder, replaces an old one keeping its mode, and leaves no temporary file', async () => {
  const dir = join(root, 'a', 'items', 'x');
  await writeItemFiles([
    { path: join(dir, 'one.png'), bytes: bytes('first') },
    { path: join(dir, 'two.npy'), bytes: new Uint8Array(70000).fill(7) },
  ]);
  assert.equal(readFileSync(join(dir, 'one.png'), 'utf8'), 'first');
  assert.deepEqual(readFileSync(join(dir, 'two.npy')), Buffer.alloc(70000, 7));
  chmodSync(join(dir, 'one.png'), 0o640);
  await writeItemFiles([{ path: join(dir, 'one.png'), bytes: bytes('second') }]);
  assert.equal(readFileSync(join(dir, 'one.png'), 'utf8'), 'second');
  assert.equal(statSync(join(dir, 'one.png')).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(dir).sort(), ['one.png', 'two.npy']);
});

test('a target that is a directory or read-only: a file error, and no file of the set is written', async () => {
  const dir = join(root, 'b');
  mkdirSync(join(dir, 'cam.npy'), { recursive: true });
  await assert.rejects(
    writeItemFiles([
      { path: join(dir, 'overlay.png'), bytes: bytes('x') },
      { path: join(dir, 'cam.npy'), bytes: bytes('y') },
    ]),
    isError('file', /cam\.npy: it is a directory/),
  );
  writeFileSync(join(dir, 'locked.png'), 'old');
  chmodSync(join(dir, 'locked.png'), 0o444);
  await assert.rejects(
    writeItemFiles([
      { path: join(dir, 'overlay.png'), bytes: bytes('x') },
      { path: join(dir, 'locked.png'), bytes: bytes('new') },
    ]),
    isError('file', /locked\.png: the file is read-only/),
  );
  assert.equal(readFileSync(join(dir, 'locked.png'), 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir).sort(), ['cam.npy', 'locked.png']);
});

test('the same file twice is a usage error naming both', async () => {
  const dir = join(root, 'c');
  await assert.rejects(
    writeItemFiles([
      { path: join(dir, 'a.png'), bytes: bytes('1') },
      { path: join(dir, '.', 'a.png'), bytes: bytes('2'), label: 'the second' },
    ]),
    isError('usage', /and the second are the same file/),
  );
  assert.equal(existsSync(join(dir, 'a.png')), false);
});

test("a dead process's temporary file in the folder is removed; a live one's is kept", async () => {
  const dir = join(root, 'd');
  mkdirSync(dir, { recursive: true });
  // PID 2^22 + 1 is above Linux's pid_max limit (2^22): no such process.
  const dead = `.x.png.${2 ** 22 + 1}.0123456789ab.tmp`;
  const live = `.y.png.${process.pid}.0123456789ab.tmp`;
  writeFileSync(join(dir, dead), 'stale');
  writeFileSync(join(dir, live), 'in use');
  await writeItemFiles([{ path: join(dir, 'x.png'), bytes: bytes('x') }]);
  assert.deepEqual(readdirSync(dir).sort(), [live, 'x.png'].sort());
});
