/**
 * Independent references for the ONNX gradient graphs, used by test/onnx*.test.ts and
 * bench/onnx.ts: central finite differences whose forward evaluations are ONNX Runtime runs of
 * the *original* model (or of its tail from a layer on, the rest held at cached values), with
 * outputs subtracted elementwise before the weighted sum (float32 noise stays small).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { GraphAnalysis } from '../../src/engine/onnx/analysis.js';
import { valueInfo } from '../../src/engine/onnx/builder.js';
import { DataType, encodeModel, type ModelProto, type NodeProto } from '../../src/engine/onnx/proto.js';
import { paramsToBlob, type Param, type UnetSpec } from './unet.js';

export function gaussian(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) * scale;
  return out;
}

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s + 0.5) / 4294967296) * (hi - lo);
  }
  return out;
}

/**
 * The part of the model downstream of `layer`, as a model whose inputs are the layer and every
 * data-dependent tensor the downstream part reads from outside it; output: the logits.
 */
export function tailModel(an: GraphAnalysis, layer: string, logits: string): { model: ModelProto; inputs: string[] } {
  const down = new Set<string>([layer]);
  const nodes: NodeProto[] = [];
  for (const n of an.nodes) {
    if (n.input.some((i) => down.has(i))) {
      nodes.push(n);
      for (const o of n.output) if (o) down.add(o);
    }
  }
  const crossing = new Set<string>();
  const kept = new Set<NodeProto>(nodes);
  // Constants the tail needs (Constant nodes, shape arithmetic not depending on the input) come along.
  const extra: NodeProto[] = [];
  const visit = (t: string) => {
    if (!t || down.has(t) || an.initializers.has(t) || crossing.has(t)) return;
    const p = an.producer.get(t);
    if (an.dataDependent.has(t) || !p) {
      crossing.add(t);
      return;
    }
    if (kept.has(p)) return;
    kept.add(p);
    extra.push(p);
    for (const i of p.input) visit(i);
  };
  for (const n of nodes) for (const i of n.input) visit(i);
  const all = an.nodes.filter((n) => kept.has(n));
  const inputs = [layer, ...crossing]; // the layer is downstream, so never crossing
  const model: ModelProto = {
    ...an.model,
    graph: {
      ...an.model.graph,
      node: all,
      input: inputs.map((t) => valueInfo(t, an.dataType(t) ?? DataType.FLOAT, an.shape(t))),
      output: [valueInfo(logits, DataType.FLOAT, an.shape(logits))],
      valueInfo: [],
    },
  };
  return { model, inputs };
}

/** A plain ONNX Runtime session on a model (all optimisations, 1 thread for reproducibility). */
export async function session(model: ModelProto | Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
}

/** Values of named tensors for one input (the model with those tensors as outputs). */
export async function tensorsAt(an: GraphAnalysis, input: Float32Array, names: string[]): Promise<Map<string, Float32Array>> {
  const inner = names.filter((n) => n !== an.inputName);
  const out = new Map<string, Float32Array>();
  if (names.includes(an.inputName)) out.set(an.inputName, input);
  if (inner.length === 0) return out;
  const model: ModelProto = {
    ...an.model,
    graph: { ...an.model.graph, output: inner.map((n) => valueInfo(n, an.dataType(n) ?? DataType.FLOAT, an.shape(n))), valueInfo: [] },
  };
  const s = await session(model);
  try {
    const res = await s.run({ [an.inputName]: new ort.Tensor('float32', input, an.shape(an.inputName)) });
    for (const n of inner) out.set(n, res[n].data as Float32Array);
  } finally {
    await s.release();
  }
  return out;
}

/**
 * ∂(Σ cot·logits)/∂t at the listed flat indices of tensor `t` by central differences:
 * (Σ cot·(y(t+ε) − y(t−ε))) / 2ε in float64, every other input of the tail held fixed.
 */
export async function finiteDifferences(
  an: GraphAnalysis,
  layer: string,
  logits: string,
  input: Float32Array,
  cotangent: Float32Array,
  indices: number[],
  eps: number,
): Promise<Float64Array> {
  const isInput = layer === an.inputName;
  const tail = isInput ? null : tailModel(an, layer, logits);
  const names = tail ? tail.inputs : [an.inputName];
  const values = isInput ? new Map([[an.inputName, input]]) : await tensorsAt(an, input, names);
  const model: ModelProto = tail
    ? tail.model
    : { ...an.model, graph: { ...an.model.graph, output: [valueInfo(logits, DataType.FLOAT, an.shape(logits))], valueInfo: [] } };
  const base = values.get(layer) as Float32Array;
  const feeds: Record<string, ort.Tensor> = {};
  for (const n of names) feeds[n] = new ort.Tensor('float32', values.get(n) as Float32Array, an.shape(n));
  const s = await session(model);
  const run = async (x: Float32Array) => {
    feeds[layer] = new ort.Tensor('float32', x, an.shape(layer));
    return (await s.run(feeds))[logits].data as Float32Array;
  };
  const out = new Float64Array(indices.length);
  try {
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[i] += eps;
      minus[i] -= eps;
      const h = (plus[i] - minus[i]) / 2; // the step float32 actually took
      const yp = await run(plus);
      const ym = await run(minus);
      let acc = 0;
      for (let j = 0; j < yp.length; j++) if (cotangent[j] !== 0) acc += cotangent[j] * (yp[j] - ym[j]);
      out[k] = acc / (2 * h);
    }
  } finally {
    await s.release();
  }
  return out;
}

/** A Python with PyTorch importable (Debian's python3-torch lives under /usr/bin/python3), or null with the reason. */
export function findTorch(): { python: string } | { reason: string } {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return { python };
  }
  return { reason: 'PyTorch is not importable (apt-get install python3-torch to run this check)' };
}

/** Writes what scripts/onnx/torch_reference.py reads (the U-Net's spec and weights, input and objective, NCHW) to a new temporary directory. */
function torchInputs(unet: { spec: UnetSpec; params: Param[] }, input: Float32Array, weightsNchw: Float32Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgc-torch-'));
  const { index, blob } = paramsToBlob(unet.params);
  const s = unet.spec;
  writeFileSync(
    join(dir, 'spec.json'),
    JSON.stringify({
      levels: s.levels,
      base: s.base,
      classes: s.classes,
      inChannels: s.inChannels,
      height: s.height,
      width: s.width,
      params: index,
    }),
  );
  writeFileSync(join(dir, 'params.bin'), blob);
  writeFileSync(join(dir, 'input.bin'), new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  writeFileSync(join(dir, 'weights.bin'), new Uint8Array(weightsNchw.buffer, weightsNchw.byteOffset, weightsNchw.byteLength));
  return dir;
}

const TORCH_SCRIPT = fileURLToPath(new URL('./torch_reference.py', import.meta.url));

/** Runs scripts/onnx/torch_reference.py on the project's U-Net with the given weights, input and objective (NCHW): α at the bottleneck and S. */
export function runTorchReference(
  python: string,
  unet: { spec: UnetSpec; params: Param[] },
  input: Float32Array,
  weightsNchw: Float32Array,
): { alpha: number[]; score: number } {
  const dir = torchInputs(unet, input, weightsNchw);
  try {
    const r = spawnSync(python, [TORCH_SCRIPT, dir, 'alpha'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`torch_reference.py failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { alpha: number[]; score: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The U-Net in a PyTorch process that runs one forward pass or one Seg-Grad-CAM per call and reports its time (ms, measured in Python). */
export interface TorchServer {
  threads: number;
  torch: string;
  time(what: 'forward' | 'gradcam'): Promise<number>;
  close(): void;
}

export async function startTorchServer(
  python: string,
  unet: { spec: UnetSpec; params: Param[] },
  input: Float32Array,
  weightsNchw: Float32Array,
  env: Record<string, string> = {},
): Promise<TorchServer> {
  const dir = torchInputs(unet, input, weightsNchw);
  const child = spawn(python, [TORCH_SCRIPT, dir, 'serve'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('torch_reference.py stopped');
    return value as string;
  };
  const close = () => {
    child.stdin.end('quit\n');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const info = JSON.parse(await next()) as { threads: number; torch: string };
    return {
      ...info,
      time: async (what) => {
        child.stdin.write(`${what}\n`);
        return Number(await next());
      },
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}
