/**
 * Writing one item's output files in a batch worker thread. The protocol is that of
 * src/io/output-set.ts: each file is written in full to a temporary file beside its target
 * (`.NAME.PID.HEX.tmp`, so the run's sweep recognises it), flushed, and only when all are written
 * are they renamed over their targets (an old target gets a hard-link backup first and is put back
 * if a rename fails). What differs is the cost, measured in docs/batch.md ("Where the scaling
 * went"):
 *  - the file operations are synchronous calls of the worker thread (6 per file instead of 9
 *    asynchronous ones, each a round trip through libuv's thread pool that the other core paid
 *    for); a worker thread has nothing else to run meanwhile;
 *  - the flushes (fsync) of an item's files run at once in libuv's pool and are awaited, so the
 *    thread computes the next item while they run (pool-worker.ts keeps one in hand).
 * Worker threads receive no signals, so there is nothing to clean up on SIGINT here: temporary
 * files of a killed process are removed by the next run's sweep (their PID is gone).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsync, linkSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SegGradCamError } from '../errors.js';
import { errnoCode, reason, removeStaleTemps, type Output } from '../io/output-set.js';

const tempPathFor = (path: string) =>
  join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);

const fileError = (err: unknown, path: string): unknown =>
  err instanceof SegGradCamError || errnoCode(err) === undefined
    ? err
    : new SegGradCamError(`cannot write ${path}: ${reason(err, path)}`, 'file');

const fsyncAsync = (fd: number) => new Promise<void>((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));

/** Writes every output, all or none; errors are 'file' errors naming the path (as writeOutputs). */
export async function writeItemFiles(outputs: Output[]): Promise<void> {
  if (outputs.length === 0) return;
  // The same file twice (output-set's check, without a stat per file: an item's folder holds only its own files).
  const seen = new Map<string, string>();
  for (const o of outputs) {
    const key = resolve(o.path);
    const label = o.label ?? o.path;
    const other = seen.get(key);
    if (other !== undefined)
      throw new SegGradCamError(`${other} and ${label} are the same file (${o.path}): give them different paths`, 'usage');
    seen.set(key, label);
  }
  for (const folder of new Set(outputs.map((o) => dirname(resolve(o.path))))) {
    try {
      mkdirSync(folder, { recursive: true });
    } catch (err) {
      throw fileError(err, outputs[0].path);
    }
    await removeStaleTemps(folder);
  }
  // Targets that cannot be replaced by a file fail before any temporary file exists; existing files keep their mode.
  const modes = outputs.map((o) => {
    const s = lstatSync(o.path, { throwIfNoEntry: false });
    if (!s) return { mode: 0o666, exists: false };
    if (s.isDirectory()) throw new SegGradCamError(`cannot write ${o.path}: it is a directory`, 'file');
    if (s.isFile() && (s.mode & 0o222) === 0) throw new SegGradCamError(`cannot write ${o.path}: the file is read-only`, 'file');
    const t = s.isFile() ? s : statSync(o.path, { throwIfNoEntry: false });
    return { mode: t?.isFile() ? t.mode & 0o7777 : 0o666, exists: true };
  });
  const temps: string[] = [];
  const fds: number[] = [];
  let k = 0;
  try {
    for (; k < outputs.length; k++) {
      const tmp = tempPathFor(outputs[k].path);
      // 'wx': never clobber a file we did not create (and so never delete one in the cleanup).
      fds.push(openSync(tmp, 'wx', modes[k].mode));
      temps.push(tmp);
      const bytes = outputs[k].bytes;
      let off = 0;
      while (off < bytes.length) off += writeSync(fds[k], bytes, off);
    }
    k = 0;
    await Promise.all(fds.map((fd) => fsyncAsync(fd)));
  } catch (err) {
    for (const fd of fds) closeQuietly(fd);
    for (const t of temps) rmSync(t, { force: true });
    throw fileError(err, outputs[Math.min(k, outputs.length - 1)].path);
  }
  for (const fd of fds) closeSync(fd);
  renameAll(outputs, temps, modes);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Renames the temporaries over their targets; on failure the replaced targets are put back from their backups. */
function renameAll(outputs: Output[], temps: string[], modes: Array<{ exists: boolean }>): void {
  const backups: Array<string | null> = [];
  let renamed = 0;
  try {
    for (let j = 0; j < outputs.length; j++) {
      if (!modes[j].exists) {
        backups.push(null);
        continue;
      }
      const backup = tempPathFor(outputs[j].path);
      let ok = true;
      try {
        linkSync(outputs[j].path, backup);
      } catch {
        ok = false; // no backup (a file system without hard links)
      }
      backups.push(ok ? backup : null);
    }
    for (; renamed < outputs.length; renamed++) renameSync(temps[renamed], outputs[renamed].path);
  } catch (err) {
    for (let j = 0; j < renamed; j++) {
      const b = backups[j];
      try {
        if (b) renameSync(b, outputs[j].path);
        else rmSync(outputs[j].path, { force: true });
      } catch {
        // best effort
      }
    }
    for (const t of [...temps.slice(renamed), ...backups.filter((b): b is string => b !== null)]) rmSync(t, { force: true });
    throw fileError(err, outputs[renamed]?.path ?? outputs[0].path);
  }
  for (const b of backups) if (b) rmSync(b, { force: true });
}
