/**
 * A set of output files committed together (Node only): every file of a run is first written
 * in full to a temporary file beside its target, and only when all of them are written are they
 * renamed over their targets. A failure before that leaves every target as it was; a failed
 * rename puts back the targets already replaced. Temporary files are named
 * `.NAME.PID.HEX.tmp`: removed on failure, on SIGINT/SIGTERM while they exist, and — when a
 * process died without removing them (SIGKILL, power loss) — by the next set written into the
 * same folder, once the process whose PID they carry is gone.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SegGradCamError } from '../errors.js';

export interface Output {
  path: string;
  bytes: Uint8Array;
  /** How the user named this output in messages (e.g. '--json'); default: the path. */
  label?: string;
}

/** A temporary file of this module: `.NAME.PID.HEX.tmp`. */
const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]{12})\.tmp$/;

const tempPathFor = (path: string) =>
  join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);

/**
 * Refuses two outputs that are the same file (same resolved path, or the same existing file
 * through a link): the second would silently replace the first. A 'usage' error naming both.
 */
export async function checkDistinctOutputs(outputs: Array<{ path: string; label?: string }>): Promise<void> {
  const seen: Array<{ key: string; ino?: string; label: string }> = [];
  for (const o of outputs) {
    const key = resolve(o.path);
    const ino = await stat(key).then(
      (s) => `${s.dev}:${s.ino}`,
      () => undefined,
    );
    const label = o.label ?? o.path;
    const other = seen.find((s) => s.key === key || (ino !== undefined && s.ino === ino));
    if (other) throw new SegGradCamError(`${other.label} and ${label} are the same file (${o.path}): give them different paths`, 'usage');
    seen.push({ key, ino, label });
  }
}

/** Writes every output, all or none (see the module comment). Errors are 'file' errors naming the path. */
export async function writeOutputs(outputs: Output[]): Promise<void> {
  const staged = await stageOutputs(outputs);
  await staged.commit();
}

/** Outputs written to their temporary files, not yet renamed. */
export interface StagedOutputs {
  /** The temporary files, in the order of the outputs. */
  readonly temps: readonly string[];
  /** Renames them all over their targets (or, on failure, restores the targets and throws). */
  commit(): Promise<void>;
  /** Removes the temporary files; the targets stay as they were. */
  discard(): Promise<void>;
}

/** First half of writeOutputs: checks, sweeps stale temporary files, writes and flushes the temporary files. */
export async function stageOutputs(outputs: Output[]): Promise<StagedOutputs> {
  await checkDistinctOutputs(outputs);
  for (const folder of new Set(outputs.map((o) => dirname(resolve(o.path))))) await removeStaleTemps(folder);
  for (const o of outputs) await checkTarget(o.path);
  const temps: string[] = [];
  try {
    for (const o of outputs) temps.push(await writeTemp(o.path, o.bytes));
  } catch (err) {
    await removeTemps(temps);
    throw err;
  }
  let done = false;
  return {
    temps,
    commit: async () => {
      if (done) throw new Error('outputs already committed or discarded');
      done = true;
      await renameAll(outputs, temps);
    },
    discard: async () => {
      if (done) return;
      done = true;
      await removeTemps(temps);
    },
  };
}

/** Fails early, before any temporary file, when a target cannot be replaced by a file. */
async function checkTarget(path: string): Promise<void> {
  const s = await lstat(path).catch(() => undefined);
  if (!s) return;
  if (s.isDirectory()) throw new SegGradCamError(`cannot write ${path}: it is a directory`, 'file');
  // Replacing by rename ignores the file's own permissions: honour a read-only file explicitly.
  if (s.isFile() && (s.mode & 0o222) === 0) throw new SegGradCamError(`cannot write ${path}: the file is read-only`, 'file');
}

async function writeTemp(path: string, bytes: Uint8Array): Promise<string> {
  const tmp = tempPathFor(path);
  let handle: FileHandle | undefined;
  let created = false;
  try {
    // 'wx': never clobber a file we did not create (and so never delete one in the cleanup).
    handle = await open(tmp, 'wx', await modeOf(path));
    created = true;
    track(tmp);
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    return tmp;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    if (created) await removeTemps([tmp]);
    throw fileError(err, path);
  }
}

/**
 * Renames the temporaries over their targets. Before the first rename each existing target gets
 * a hard link (a backup that costs no copy), so that a failed rename can put the old files back.
 */
async function renameAll(outputs: Output[], temps: string[]): Promise<void> {
  const backups: Array<string | null> = [];
  let renamed = 0;
  try {
    for (const o of outputs) {
      const backup = tempPathFor(o.path);
      // No backup when there is no old file (or the file system has no hard links).
      const ok = await link(o.path, backup).then(
        () => true,
        () => false,
      );
      if (ok) track(backup);
      backups.push(ok ? backup : null);
    }
    for (; renamed < outputs.length; renamed++) {
      await rename(temps[renamed], outputs[renamed].path);
      untrack(temps[renamed]);
    }
  } catch (err) {
    for (let j = 0; j < renamed; j++) {
      const b = backups[j];
      await (b ? rename(b, outputs[j].path).then(() => untrack(b)) : rm(outputs[j].path, { force: true })).catch(() => undefined);
    }
    await removeTemps([...temps, ...backups.filter((b): b is string => b !== null)]);
    throw fileError(err, outputs[renamed]?.path ?? outputs[0].path);
  }
  await removeTemps(backups.filter((b): b is string => b !== null));
}

/**
 * Removes `.NAME.PID.HEX.tmp` files in `folder` whose process is gone (signal 0 says ESRCH).
 * Temporary files of live processes, including this one, are left alone. Best effort: errors are ignored.
 */
export async function removeStaleTemps(folder: string): Promise<string[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || isAlive(pid)) continue;
    const path = join(folder, name);
    // Only plain files: never follow a link or remove a directory that happens to match.
    const s = await lstat(path).catch(() => undefined);
    if (!s?.isFile()) continue;
    await rm(path, { force: true }).then(
      () => removed.push(path),
      () => undefined,
    );
  }
  return removed;
}

function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Temporary files that exist now, removed synchronously if the process is told to stop.
const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function onSignal(signal: NodeJS.Signals): void {
  removeLiveSync();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  // Die of the same signal, as without our handler (exit code 128 + n for the parent).
  process.kill(process.pid, signal);
}

function removeLiveSync(): void {
  for (const p of live) rmSync(p, { force: true });
  live.clear();
}

function track(path: string): void {
  if (live.size === 0) {
    for (const s of SIGNALS) process.on(s, onSignal);
    process.on('exit', removeLiveSync);
  }
  live.add(path);
}

function untrack(path: string): void {
  live.delete(path);
  if (live.size === 0) {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.removeListener('exit', removeLiveSync);
  }
}

async function removeTemps(paths: string[]): Promise<void> {
  for (const p of paths) {
    await rm(p, { force: true }).catch(() => undefined);
    untrack(p);
  }
}

/** Keep an existing file's permissions when replacing it; new files get the usual 0o666 & ~umask. */
async function modeOf(path: string): Promise<number> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.mode & 0o7777 : 0o666;
  } catch {
    return 0o666;
  }
}

function fileError(err: unknown, path: string): unknown {
  if (err instanceof SegGradCamError || errnoCode(err) === undefined) return err;
  return new SegGradCamError(`cannot write ${path}: ${reason(err, path)}`, 'file');
}

/** The code of an operating-system error (ENOENT, EACCES, ...); undefined for anything else, such as Node's ERR_* argument errors. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && !code.startsWith('ERR_') ? code : undefined;
}

/** A short, human reason for a file-system error. */
export function reason(err: unknown, path?: string): string {
  switch (errnoCode(err)) {
    case 'ENOENT':
      return path ? `directory ${dirname(resolve(path))} does not exist` : 'no such file';
    case 'ENOTDIR':
      return 'a parent of the path is not a directory';
    case 'EISDIR':
      return 'it is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EROFS':
      return 'read-only file system';
    default:
      return err instanceof Error ? err.message.replace(/\s+/g, ' ') : String(err);
  }
}
