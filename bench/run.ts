/**
 * `npm run bench`: median forward and explain times for the bundled U-Net and for selfie,
 * with their ratio, measured in one run on this machine. Not a test: nothing is asserted.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { setupBackend, type BackendName } from '../src/backend/index.js';
import { Explainer } from '../src/explain.js';
import { readImageFile } from '../src/io/files.js';
import { loadModelFile } from '../src/model/load-node.js';
import { imageToInput } from '../src/preprocess.js';
import * as R from '../src/target/region.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(fn: () => Promise<void>): Promise<number[]> {
  await fn(); // warm-up: kernels compile, caches fill
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

interface Case {
  name: string;
  model: string;
  image: string;
  region: R.Region;
  classId?: number;
  layer?: string;
}

const cases: Case[] = [
  { name: 'bundled U-Net (64x64, bottleneck)', model: 'models/unet-texture-mnist-biased/model.json', image: 'fixtures/tiles/sample.png', region: R.whole(), classId: 1 },
  { name: 'selfie (256x256, 16x16 encoder output)', model: 'models/selfie/selfie.json', image: 'fixtures/images/astronaut.png', region: R.classRegion(), classId: 1, layer: 'add_4__xeno_compat__1' },
];

async function bench(backend: BackendName) {
  await setupBackend(backend);
  console.log(`\nbackend: ${tf.getBackend()}`);
  console.log('| model | forward ms (median) | explain ms (median, forward + backward) | new region on cached forward ms | explain / forward |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const c of cases) {
    const adapter = await loadModelFile(c.model);
    const explainer = new Explainer(adapter);
    const image = await readImageFile(c.image);
    const { height, width, channels } = adapter.input;
    const forward = await time(async () => {
      const x = imageToInput(image, height, width, channels);
      const pass = await adapter.forward(x);
      pass.dispose();
      x.dispose();
    });
    const explain = await time(async () => {
      explainer.release(); // a cold explanation: forward + backward
      await explainer.explain(image, { region: c.region, classId: c.classId, layer: c.layer });
    });
    const cached = await time(async () => {
      await explainer.explain(image, { region: c.region, classId: c.classId, layer: c.layer });
    });
    const f = median(forward);
    const e = median(explain);
    console.log(`| ${c.name} | ${f.toFixed(1)} | ${e.toFixed(1)} | ${median(cached).toFixed(1)} | ${(e / f).toFixed(2)} |`);
    explainer.dispose();
  }
}

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; tfjs ${tf.version.tfjs}; ${RUNS} runs after one warm-up`);
const backends = (process.env.BENCH_BACKENDS ?? 'wasm,cpu').split(',') as BackendName[];
for (const b of backends) await bench(b);
