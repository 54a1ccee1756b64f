/**
 * One measurement of bench/onnx-1024.ts, in a process of its own so that its peak RSS is its own:
 *
 *   node --import tsx bench/onnx-1024-child.ts plain MODEL
 *   node --import tsx bench/onnx-1024-child.ts explain MODEL REGION [LAYER]
 *
 * `plain`: onnxruntime-node's own session (its default options) on the model file as is, one
 * run on a 1024² input. `explain`: the library as the CLI uses it (loadOnnxExplainer, TF.js on
 * wasm), one explanation of fixtures/images/astronaut.png (resized by the Explainer) at LAYER
 * (default: the automatic bottleneck) for REGION: `pixel` (one pixel), `pixel-auto` (the same pixel, its class from the prediction), `box` (a 64x64 box of the 512x512 image: 128x128 model pixels) or
 * `class` (the class region of class 1). Prints one JSON line: load time (file to ready), run
 * time (the forward run, or the explain call), and the process's peak RSS. SGC_ORT_ARENA=0 turns
 * ONNX Runtime's CPU memory arena off in both (=1 on everywhere in `explain`).
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { setupBackend } from '../src/backend/index.js';
import { readImageFile } from '../src/io/files.js';
import { loadOnnxExplainer } from '../src/engine/onnx/node.js';
import type { Region } from '../src/region/region.js';

const IMAGE = new URL('../fixtures/images/astronaut.png', import.meta.url).pathname;

const REGIONS: Record<string, { region: Region; classId?: number }> = {
  pixel: { region: { kind: 'pixel', x: 200, y: 300 }, classId: 1 },
  box: { region: { kind: 'box', x0: 192, y0: 256, x1: 255, y1: 319 }, classId: 1 },
  class: { region: { kind: 'class' }, classId: 1 },
  // The usual click: a pixel, its class taken from the prediction.
  'pixel-auto': { region: { kind: 'pixel', x: 200, y: 300 } },
};

async function plain(path: string) {
  const t0 = performance.now();
  const arena = process.env.SGC_ORT_ARENA === '0' ? { enableCpuMemArena: false } : {};
  const session = await ort.InferenceSession.create(await readFile(path), arena);
  const load = performance.now() - t0;
  const name = session.inputNames[0];
  const x = new Float32Array(3 * 1024 * 1024);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 256) / 255;
  const t1 = performance.now();
  await session.run({ [name]: new ort.Tensor('float32', x, [1, 3, 1024, 1024]) });
  return { load, run: performance.now() - t1 };
}

async function explain(path: string, regionName: string, layer?: string) {
  const r = REGIONS[regionName];
  if (!r) throw new Error(`unknown region ${regionName}: pixel, box or class`);
  await setupBackend('wasm');
  const image = await readImageFile(IMAGE);
  const t0 = performance.now();
  // SGC_ORT_ARENA=0 / 1: ONNX Runtime's CPU memory arena off / on in every session (default: the library's choice).
  const arena = process.env.SGC_ORT_ARENA ? { sessionOptions: { enableCpuMemArena: process.env.SGC_ORT_ARENA !== '0' } } : {};
  const explainer = await loadOnnxExplainer(path, arena);
  const load = performance.now() - t0;
  // The peak so far: the load (the shape probe) on its own.
  const loadPeakMiB = process.resourceUsage().maxRSS / 1024;
  const t1 = performance.now();
  const e = await explainer.explain(image, { region: r.region, classId: r.classId, layer: layer ?? 'bottleneck' });
  const run = performance.now() - t1;
  explainer.dispose();
  return { load, run, loadPeakMiB, layer: e.layer.name, S: e.scoreValue };
}

const [mode, path, ...rest] = process.argv.slice(2);
const res = mode === 'plain' ? await plain(path) : await explain(path, rest[0], rest[1]);
// maxRSS is in KiB.
console.log(JSON.stringify({ mode, ...res, peakMiB: process.resourceUsage().maxRSS / 1024 }));
