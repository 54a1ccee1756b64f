/**
 * Where an ONNX Runtime run's memory goes, without running at the big size:
 *
 *   node --import tsx bench/onnx-memory-plan.ts [MODEL] [LAYER] [SCALE]
 *
 * Loads MODEL (default: the zoo's 64x64 nested U-Net) and runs, with ONNX Runtime's profiler on,
 * the load probe, the plain model and the explanation graph of LAYER (default: the bottleneck) as
 * the Explainer's first explanation runs it (forward and backward fused, outputs the logits, A
 * and ∂S/∂A). Each run is replayed in the profile's kernel order (test/helpers/ort-profile.ts:
 * a tensor lives from its producer to its last reader) and its peak of live tensors printed,
 * multiplied by SCALE (the area factor: the default 256 turns 64x64 into 1024x1024), with what is
 * alive at the explanation's peak by producing op. SGC_PLAN_OPTIONS (JSON) adds session options.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { valueInfo } from '../src/engine/onnx/builder.js';
import { COTANGENT, GRADIENT, buildGradientGraph } from '../src/engine/onnx/gradient.js';
import { DEFAULT_SESSION_OPTIONS } from '../src/engine/onnx/options.js';
import { DataType, encodeModel, type ModelProto } from '../src/engine/onnx/proto.js';
import { Explainer } from '../src/explain.js';
import { profilingRuntime, replay } from '../test/helpers/ort-profile.js';

const MODEL = process.argv[2] ?? fileURLToPath(new URL('../fixtures/zoo/u2net-like/model.onnx', import.meta.url));
const SCALE = Number(process.argv[4] ?? 256);
const options = { ...DEFAULT_SESSION_OPTIONS, ...(JSON.parse(process.env.SGC_PLAN_OPTIONS ?? '{}') as object) };

const prof = profilingRuntime();
const bytes = new Uint8Array(await readFile(MODEL));
const adapter = await OnnxModelAdapter.create(bytes, prof.ort);
const layer = process.argv[3] ?? new Explainer(adapter).bottleneck;
const an = adapter.analysis;
const dims = adapter.inputDims;
const inputSize = dims.reduce((a, b) => a * b, 1);
const x = new prof.ort.Tensor('float32', new Float32Array(inputSize).fill(0.5), dims);

async function once(model: Uint8Array, feeds: Record<string, unknown>) {
  const s = await prof.ort.InferenceSession.create(model, options);
  await s.run(feeds as never);
  await s.release();
}

await once(bytes, { [adapter.inputName]: x });
const gg = buildGradientGraph(an, layer, adapter.logitsName);
const fused: ModelProto = {
  ...gg.model,
  graph: {
    ...gg.model.graph,
    output: [
      valueInfo(adapter.logitsName, DataType.FLOAT, an.shape(adapter.logitsName)),
      valueInfo(layer, DataType.FLOAT, an.shape(layer)),
      ...gg.model.graph.output.filter((o) => o.name === GRADIENT),
    ],
  },
};
const ls = an.shape(adapter.logitsName);
const cot = new Float32Array(ls.reduce((a, b) => a * b, 1));
cot[Math.floor(cot.length / 2)] = 1;
await once(encodeModel(fused), { [adapter.inputName]: x, [COTANGENT]: new prof.ort.Tensor('float32', cot, ls) });
adapter.dispose();

const MiB = (b: number) => `${((b * SCALE) / 2 ** 20).toFixed(0)} MiB`;
for (const [what, run] of [
  ['load probe', prof.runs[0]],
  ['plain model', prof.runs[1]],
  [`explanation at ${layer}`, prof.runs[2]],
] as const) {
  const r = replay(run, inputSize * 4);
  const ms = (f: (name: string) => boolean) => (run.kernels.filter((k) => f(k.name)).reduce((a, k) => a + k.micros, 0) / 1000).toFixed(1);
  console.log(`${what}: ${run.kernels.length} kernels, peak of live tensors ${MiB(r.peak)} (x${SCALE}) after ${r.at}`);
  console.log(`  kernel time ${ms(() => true)} ms, of which the backward (sgc/ nodes) ${ms((n) => n.startsWith('sgc/'))} ms`);
  for (const [k, b] of [...r.byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${MiB(b).padStart(9)}  ${k}`);
}
prof.cleanup();
