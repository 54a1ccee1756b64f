/**
 * What an ONNX Runtime run keeps alive, read from ONNX Runtime itself: a runtime whose sessions
 * profile their runs and write their optimised graph, and a replay of each run in the order the
 * profile gives. A tensor counts from its producer's kernel to its last reader's (graph outputs to
 * the end), which is when ONNX Runtime's planner frees it; in-place reuse is not modelled, so the
 * replay is an upper bound of the run's activation memory. Used by test/onnx-memory.test.ts and
 * bench/onnx-memory-plan.ts.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-common';
import { nodeRuntime } from '../../src/engine/onnx/node.js';
import type { OrtRuntime } from '../../src/engine/onnx/options.js';
import { decodeModel, type ModelProto } from '../../src/engine/onnx/proto.js';

/** One kernel of a profiled run, in execution order. */
export interface Kernel {
  name: string;
  op: string;
  /** The kernel's run time (µs). */
  micros: number;
  /** Bytes of each output, from the profile's shapes and element types. */
  outputBytes: number[];
}

export interface ProfiledRun {
  /** The session's graph after ONNX Runtime's optimisations (node names match the kernels'). */
  graph: ModelProto;
  kernels: Kernel[];
}

const ELEMENT_BYTES: Record<string, number> = { float: 4, int64: 8, int32: 4, bool: 1, uint8: 1, int8: 1, double: 8, float16: 2 };

/**
 * nodeRuntime whose sessions profile every run; `runs` gets one entry per session run (in the
 * order sessions are released or `collect` is called). Call `cleanup` at the end.
 */
export function profilingRuntime(): { ort: OrtRuntime; runs: ProfiledRun[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sgc-ort-profile-'));
  const runs: ProfiledRun[] = [];
  let n = 0;
  const ort: OrtRuntime = {
    name: 'profiling',
    Tensor: nodeRuntime.Tensor,
    InferenceSession: {
      async create(model: Uint8Array, options?: InferenceSession.SessionOptions) {
        const id = n++;
        const optimized = join(dir, `optimized-${id}.onnx`);
        const prefix = join(dir, `profile-${id}`);
        const s = await nodeRuntime.InferenceSession.create(model, {
          ...options,
          enableProfiling: true,
          profileFilePrefix: prefix,
          optimizedModelFilePath: optimized,
        });
        const release = s.release.bind(s);
        return Object.assign(s, {
          release: async () => {
            s.endProfiling();
            await release();
            const file = readdirSync(dir).find((f) => f.startsWith(`profile-${id}_`));
            if (file) runs.push(readProfile(join(dir, file), optimized));
          },
        });
      },
    },
  };
  return { ort, runs, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A profile file and the optimised graph it ran. */
export function readProfile(profile: string, optimized: string): ProfiledRun {
  const events = JSON.parse(readFileSync(profile, 'utf8')) as Array<{
    cat: string;
    name: string;
    ts: number;
    dur?: number;
    args?: { op_name?: string; output_type_shape?: Array<Record<string, number[]>> };
  }>;
  const kernels = events
    .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'))
    .sort((a, b) => a.ts - b.ts)
    .map((e) => ({
      name: e.name.slice(0, -'_kernel_time'.length),
      op: e.args?.op_name ?? '?',
      micros: e.dur ?? 0,
      outputBytes: (e.args?.output_type_shape ?? []).map((o) => {
        const [type, dims] = Object.entries(o)[0];
        return (ELEMENT_BYTES[type] ?? 4) * dims.reduce((a, b) => a * b, 1);
      }),
    }));
  return { graph: decodeModel(new Uint8Array(readFileSync(optimized))), kernels };
}

export interface Replay {
  /** The most bytes of tensors alive at once (the model input included). */
  peak: number;
  /** The kernel after which the peak is reached. */
  at: string;
  /** Bytes alive at the peak by the producing op type ('(backward)' marks the gradient graph's ops). */
  byOp: Map<string, number>;
}

/** Ops whose output is a view of their first input in ONNX Runtime (no buffer of its own). */
const VIEWS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/** Replays a profiled run (see the file comment); `inputBytes` is the model input's size. */
export function replay(run: ProfiledRun, inputBytes: number): Replay {
  const byName = new Map(run.graph.graph.node.map((n) => [n.name ?? '', n]));
  const nodes = run.kernels.map((k) => {
    const n = byName.get(k.name);
    if (!n) throw new Error(`kernel ${k.name} (${k.op}) has no node of that name in the optimised graph`);
    return n;
  });
  // A view's buffer is its input's: the buffer lives until the last reader of either.
  const buffer = new Map<string, string>();
  const root = (t: string) => buffer.get(t) ?? t;
  for (const n of nodes) if (n && VIEWS.has(n.opType) && n.output[0]) buffer.set(n.output[0], root(n.input[0]));
  const outputs = new Set(run.graph.graph.output.map((o) => root(o.name)));
  const lastUse = new Map<string, number>();
  nodes.forEach((n, i) => n?.input.forEach((t) => lastUse.set(root(t), i)));
  const size = new Map<string, number>();
  const made = new Map<string, string>();
  const alive = new Set<string>();
  let live = inputBytes;
  let best = { peak: live, step: -1, alive: [] as string[] };
  nodes.forEach((n, i) => {
    if (!n) return;
    n.output.forEach((t, k) => {
      if (!t || buffer.has(t)) return;
      size.set(t, run.kernels[i].outputBytes[k] ?? 0);
      made.set(t, `${n.opType}${n.name?.startsWith('sgc/probe/') ? ' (probe)' : n.name?.startsWith('sgc/') ? ' (backward)' : ''}`);
      live += size.get(t) ?? 0;
      alive.add(t);
    });
    if (live > best.peak) best = { peak: live, step: i, alive: [...alive] };
    for (const t of [...n.input, ...n.output].map(root)) {
      if (alive.has(t) && !outputs.has(t) && (lastUse.get(t) ?? -1) <= i) {
        alive.delete(t);
        live -= size.get(t) ?? 0;
      }
    }
  });
  const byOp = new Map<string, number>();
  for (const t of best.alive) byOp.set(made.get(t) ?? '?', (byOp.get(made.get(t) ?? '?') ?? 0) + (size.get(t) ?? 0));
  return { peak: best.peak, at: run.kernels[best.step]?.name ?? 'start', byOp };
}
