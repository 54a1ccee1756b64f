/**
 * `node --import tsx bench/volume-parts.ts [SIZE=128] [PATCH=64]`: where a warm region explanation
 * inside one patch spends its time, with sliding windows (the bundled 3-D U-Net, overlap 0.5). In
 * turns, so that a busy machine slows every part alike: one patch's plain forward, ONNX Runtime's
 * fused forward + backward run of that patch alone, and the whole explanation of an 8³ box and of a
 * voxel in the corner patch, and of the voxel at the centre (8 patches), class given; then the same
 * explanations with the fused run answered from a cache, which leaves the JavaScript alone (the
 * cotangent, the patch crop, α, S, the blend of the CAM on the volume, the region mask). Medians of
 * BENCH_RUNS (default 9). Not a test: nothing is asserted.
 */
import { readFileSync } from 'node:fs';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { defaultVolumeLayer } from '../src/volume/explain.js';
import { explainVolumeGrid, openVolumeModel } from '../src/volume/explain-grid.js';
import type { OnnxVolumeModel, VolumeGradient } from '../src/volume/onnx-volume.js';
import type { Dims3, VolumeRegion } from '../src/volume/regions.js';
import { machineLine, median } from './timing.js';

const SIZE = Number(process.argv[2] ?? 128);
const PATCH = Number(process.argv[3] ?? 64);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const MODEL = new URL('../models/volume-synthetic/model.onnx', import.meta.url);

async function main() {
  const dims: Dims3 = [SIZE, SIZE, SIZE];
  const x = Float32Array.from({ length: SIZE ** 3 }, (_, i) => 0.3 + 0.3 * Math.sin(i * 0.001));
  const model = await openVolumeModel(new Uint8Array(readFileSync(MODEL)), nodeRuntime, dims, { patch: [PATCH, PATCH, PATCH] });
  const c = Math.floor(PATCH / 4);
  const regions: Record<string, VolumeRegion> = {
    'box 8³ (corner patch)': { kind: 'box', box: [c - 4, c - 4, c - 4, c + 3, c + 3, c + 3] },
    'voxel (corner patch)': { kind: 'voxel', voxel: [c, c, c] },
    'voxel (centre, 8 patches)': { kind: 'voxel', voxel: [SIZE / 2, SIZE / 2, SIZE / 2] },
  };
  const first = x.subarray(0, PATCH ** 3).slice();
  const layer = defaultVolumeLayer(model);
  const cot = new Float32Array(model.logitsDims[1] * PATCH ** 3);
  cot[PATCH ** 3 + (c * PATCH + c) * PATCH + c] = 1;
  // The model whose fused run answers from a cache (copies, as ONNX Runtime's outputs are fresh arrays).
  const answers = new Map<string, VolumeGradient>();
  const cached = Object.create(model) as OnnxVolumeModel;
  cached.gradient = async (xp, l, ct) => {
    const key = `${l}:${xp[0]}:${xp[xp.length - 1]}`;
    let a = answers.get(key);
    if (!a) answers.set(key, (a = await model.gradient(xp, l, ct)));
    return { ...a, activations: a.activations.slice(), gradients: a.gradients.slice(), logits: a.logits.slice() };
  };
  const times: Record<string, number[]> = { 'plain forward': [], 'fused run alone': [] };
  for (const name of Object.keys(regions)) times[name] = [];
  for (const name of Object.keys(regions)) times[`${name}, JS only`] = [];
  const time = async (key: string, f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    times[key].push(performance.now() - t);
  };
  for (let i = -2; i < RUNS; i++) {
    // i < 0: warm-up (sessions, V8)
    const keep = i >= 0;
    await time('plain forward', () => model.predict(first));
    await time('fused run alone', () => model.gradient(first, layer, cot));
    for (const [name, region] of Object.entries(regions)) {
      await time(name, () => explainVolumeGrid(model, x, dims, { region, classId: 1 }));
      await time(`${name}, JS only`, () => explainVolumeGrid(cached, x, dims, { region, classId: 1 }));
    }
    if (!keep) for (const k of Object.keys(times)) times[k].length = 0;
  }
  const forward = median(times['plain forward']);
  process.stdout.write(`${machineLine()}\nvolume ${SIZE}³, patch ${PATCH}³, overlap 0.5, layer ${layer}; medians of ${RUNS}, in turns\n`);
  for (const [k, xs] of Object.entries(times))
    process.stdout.write(`${k}: ${median(xs).toFixed(1)} ms (${(median(xs) / forward).toFixed(2)}x the plain forward)\n`);
  await model.dispose();
}

await main();
