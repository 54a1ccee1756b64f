/** A private redis-server on a loopback port and `seg-grad-cam worker` processes, for the queue tests (and the bench). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const REDIS = '/usr/bin/redis-server';
export const hasRedis = spawnSync(REDIS, ['--version']).status === 0;

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

export interface RedisOptions {
  port: number;
  /**
   * A folder: Redis persists every write to an append-only file there, fsynced before each reply
   * (`--appendonly yes --appendfsync always`), so a SIGKILLed server restarts with every job.
   * Without it: no persistence (`--save '' --appendonly no`).
   */
  dir?: string;
}

/** Starts redis-server; resolves once it accepts connections (its "Ready to accept connections" line). */
export function startRedis(o: RedisOptions): Promise<ChildProcess> {
  const persistence = o.dir
    ? ['--dir', o.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--save', '', '--appendonly', 'no'];
  const child = spawn(REDIS, ['--port', String(o.port), '--bind', '127.0.0.1', ...persistence], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let log = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      log += s;
      if (/Ready to accept connections/.test(log)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log.slice(-400)}`)));
  });
}

/** A `seg-grad-cam worker` process with one thread; `name` resolves its queue name, `done` collects its stdout lines. */
export function startWorker(url: string, lockDuration = 2000): { child: ChildProcess; name: Promise<string>; done: string[] } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/run.ts', 'worker', '--queue', url, '--workers', '1', '--lock-duration', String(lockDuration)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const done: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (s: string) => done.push(...s.trim().split('\n')));
  const name = new Promise<string>((resolve) =>
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      const m = /worker (\S+):/.exec(s);
      if (m) resolve(m[1]);
    }),
  );
  return { child, name, done };
}
