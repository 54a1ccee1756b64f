/**
 * Per-thread CPU accounting for the benches (Linux): /proc/self/task/<tid>/schedstat gives, for
 * every thread of this process, the time it ran on a CPU and the time it was runnable but waited
 * for one (run queue). Over a window of wall time W, a thread's time splits into
 *   run (on a CPU) + wait (ready, no CPU free: other load on the machine) + sleep (blocked: waiting
 *   for a message, a file, a lock) = W,
 * so a thread's run time per item is its CPU cost whatever the machine's load, and its sleep share
 * is time the batch path itself left it without work.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadTimes {
  /** ns on a CPU. */
  run: number;
  /** ns runnable, waiting for a CPU. */
  wait: number;
  /** Voluntary context switches (the thread blocked). */
  blocks: number;
}

/** This thread's OS thread id (from any thread: /proc/thread-self is the caller's). */
export function threadId(): number {
  return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]);
}

function read(tid: string): ThreadTimes | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'));
    return { run, wait, blocks: m ? Number(m[1]) : 0 };
  } catch {
    return undefined; // the thread ended meanwhile
  }
}

/** Every thread of this process now. */
export function snapshot(): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  for (const tid of readdirSync('/proc/self/task')) {
    const t = read(tid);
    if (t) out.set(Number(tid), t);
  }
  return out;
}

/** Per thread: what it used between two snapshots (threads started in between count from 0). */
export function delta(before: Map<number, ThreadTimes>, after: Map<number, ThreadTimes>): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { run: 0, wait: 0, blocks: 0 };
    out.set(tid, { run: a.run - b.run, wait: a.wait - b.wait, blocks: a.blocks - b.blocks });
  }
  return out;
}

/** The machine's CPU time split since boot (for the load beside a figure): busy and total jiffies. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { busy: total - idle, total };
}
