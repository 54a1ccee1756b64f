/**
 * `node --import tsx bench/volume.ts [SIZE=128] [PATCH=64]`: a 3-D U-Net (the bundled
 * models/volume-synthetic model, free input sizes, run on PATCH³ patches) on a SIZE³ volume with
 * sliding windows (overlap 0.5, Gaussian blending): the prediction time, the explanation time for
 * one voxel, a box inside one patch and a class region (each with the patches it runs backward),
 * against the plain forward (one patch, and the whole sliding prediction), and the peak RSS. When
 * Debian's /usr/bin/python3 has torch, the same architecture in PyTorch the MONAI/pytorch-grad-cam
 * way (bench/volume_torch.py: a sliding-window loop with Gaussian blending under autograd, S over
 * the blended logits, one backward through every patch). Medians over BENCH_RUNS (default 3);
 * BENCH_TORCH=0 skips the PyTorch side.
 * Not a test: nothing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { explainVolumeGrid, openVolumeModel } from '../src/volume/explain-grid.js';
import type { Dims3, VolumeRegion } from '../src/volume/regions.js';
import { patchStarts, predictSlidingWindow } from '../src/volume/sliding-window.js';
import { machineLine, median } from './timing.js';

const SIZE = Number(process.argv[2] ?? 128);
const PATCH = Number(process.argv[3] ?? 64);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MODEL = new URL('../models/volume-synthetic/model.onnx', import.meta.url);

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;

async function timedOnce(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  await fn(); // warm-up (sessions compiled)
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

/** A seeded volume of spheres and cubes on noise (the synthetic set's look, any size). */
function volume(n: number): Float32Array {
  let s = 7;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const v = Float32Array.from({ length: n * n * n }, () => 0.2 + 0.08 * (rand() - 0.5) * 3.4);
  for (let o = 0; o < Math.max(2, (n / 32) ** 3); o++) {
    const r = 3 + 3 * rand();
    const c = [0, 1, 2].map(() => r + 1 + rand() * (n - 2 * r - 2));
    const cube = rand() < 0.5;
    for (let d = 0; d < n; d++)
      for (let h = 0; h < n; h++)
        for (let w = 0; w < n; w++) {
          const [a, b, e] = [d - c[0], h - c[1], w - c[2]];
          if (cube ? Math.max(Math.abs(a), Math.abs(b), Math.abs(e)) <= 0.85 * r : a * a + b * b + e * e <= r * r)
            v[(d * n + h) * n + w] = 0.7;
        }
  }
  return v;
}

async function main() {
  if (!existsSync(MODEL)) throw new Error('models/volume-synthetic/model.onnx is missing (scripts/volume/synthetic.py writes it)');
  await tf.setBackend('cpu');
  const dims: Dims3 = [SIZE, SIZE, SIZE];
  const patch: Dims3 = [PATCH, PATCH, PATCH];
  const x = volume(SIZE);
  const model = await openVolumeModel(new Uint8Array(readFileSync(MODEL)), nodeRuntime, dims, { patch });
  const starts = patchStarts(dims, patch, 0.5);
  const first = x.subarray(0, PATCH ** 3).slice();
  const lines = { push: (...xs: string[]) => process.stdout.write(xs.map((x) => x + '\n').join('')) };
  lines.push(machineLine(), `volume ${SIZE}³, patch ${PATCH}³, overlap 0.5: ${starts.length} patches; medians of ${RUNS}`);
  const forward = await timed(() => model.predict(first));
  lines.push(`plain forward, one patch: ${forward.toFixed(0)} ms`);
  const predict = await timed(() => predictSlidingWindow(model, x, dims));
  lines.push(`sliding-window prediction: ${predict.toFixed(0)} ms (${(predict / forward).toFixed(1)} patch forwards)`);
  const c = Math.floor(PATCH / 4);
  const regions: Array<[string, VolumeRegion, number | undefined]> = [
    ['voxel (corner patch only)', { kind: 'voxel', voxel: [c, c, c] }, 1],
    ['voxel (centre: 8 patches)', { kind: 'voxel', voxel: [SIZE / 2, SIZE / 2, SIZE / 2] }, 1],
    ['box 8³ inside one patch', { kind: 'box', box: [c - 4, c - 4, c - 4, c + 3, c + 3, c + 3] }, 1],
    ['box 8³ inside one patch, class from the prediction', { kind: 'box', box: [c - 4, c - 4, c - 4, c + 3, c + 3, c + 3] }, undefined],
    ['class region (class 1)', { kind: 'class' }, 1],
  ];
  // The first explanations of a process also warm up V8 on the JS loops over the volume's arrays
  // (measured: the first region timed came out 1.6-2x slower whichever it was), so two untimed
  // explanations run before any region is timed; the cold cost is printed apart.
  const cold = await timedOnce(() => explainVolumeGrid(model, x, dims, { region: regions[2][1], classId: 1, overlap: 0.5 }));
  await explainVolumeGrid(model, x, dims, { region: regions[2][1], classId: 1, overlap: 0.5 });
  lines.push(`first explanation of the process (box, cold JS): ${cold.toFixed(0)} ms (${(cold / forward).toFixed(1)}x one patch forward)`);
  for (const [name, region, classId] of regions) {
    let touched = 0;
    let predicted = 0;
    const ms = await timed(async () => {
      const e = await explainVolumeGrid(model, x, dims, { region, classId, overlap: 0.5 });
      touched = e.patches.touched;
      predicted = e.patches.predicted ?? 0;
    });
    lines.push(
      `explain ${name}: ${ms.toFixed(0)} ms, ${predicted} patch forward + ${touched} patch backward runs ` +
        `(${(ms / forward).toFixed(1)}x one patch forward, ${(ms / predict).toFixed(2)}x the sliding-window prediction)`,
    );
  }
  lines.push(`peak RSS: ${mb(peak)}`);
  await model.dispose();
  if (process.env.BENCH_TORCH === '0') {
    lines.push('pytorch: skipped (BENCH_TORCH=0)');
    clearInterval(sampler);
    return;
  }
  const torch = spawnSync(
    '/usr/bin/python3',
    [new URL('volume_torch.py', import.meta.url).pathname, String(SIZE), String(PATCH), String(RUNS)],
    {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2' },
    },
  );
  if (torch.status === 0)
    lines.push(
      ...torch.stdout
        .trim()
        .split('\n')
        .map((l) => `pytorch: ${l}`),
    );
  else lines.push(`pytorch: skipped (${(torch.stderr || torch.error?.message || '').trim().split('\n').pop()})`);
  clearInterval(sampler);
}

await main();
