/** Shared by the benchmarks: medians of repeated timings, and the line that says where they ran. */
import os from 'node:os';

/** The median (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall times in ms of `runs` calls of fn, after `warmups` untimed ones (kernels compile, caches fill). */
export async function timeRuns(fn: () => Promise<unknown>, runs: number, warmups = 1): Promise<number[]> {
  for (let i = 0; i < warmups; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** A call timed elsewhere (another process): it resolves to its own time in ms. */
export interface Reported {
  reported: () => Promise<number>;
}

/**
 * Medians in ms of several functions timed in turns (one call of each per round, `runs` rounds,
 * after one untimed round): slow drifts of a shared machine then hit every function alike.
 * A `Reported` entry counts the time it reports instead of the wall time of the call.
 */
export async function timeInterleaved<K extends string>(
  fns: Record<K, (() => Promise<unknown>) | Reported>,
  runs: number,
): Promise<Record<K, number>> {
  const keys = Object.keys(fns) as K[];
  const times = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = -1; r < runs; r++) {
    for (const k of keys) {
      const fn = fns[k];
      const t = performance.now();
      const reported = typeof fn === 'function' ? (await fn(), performance.now() - t) : await fn.reported();
      if (r >= 0) times[k].push(reported);
    }
  }
  return Object.fromEntries(keys.map((k) => [k, median(times[k])])) as Record<K, number>;
}

/** CPU model, cores, memory, load and Node version: benchmark figures mean little without them. */
export function machineLine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  return `machine: ${cpus[0]?.model ?? 'unknown cpu'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load ${load}; node ${process.version}`;
}
