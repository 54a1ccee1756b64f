/**
 * `npm run bench`: median forward and explain times for the bundled U-Net and for selfie,
 * with their ratio, measured in one run on this machine. Not a test: nothing is asserted.
 */
import * as tf from '@tensorflow/tfjs';
import { setupBackend, type BackendName } from '../src/backend/index.js';
import { Explainer } from '../src/explain.js';
import { readImageFile } from '../src/io/files.js';
import { loadModelFile } from '../src/engine/tfjs/load-node.js';
import { imageToInput } from '../src/preprocess.js';
import * as R from '../src/region/region.js';
import { machineLine, median, timeRuns } from './timing.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
/** Explanations in the memory soak (BENCH_SOAK; 0 to skip). */
const SOAK = Number(process.env.BENCH_SOAK ?? 1000);
const time = (fn: () => Promise<void>): Promise<number[]> => timeRuns(fn, RUNS);

interface Case {
  name: string;
  model: string;
  image: string;
  region: R.Region;
  classId?: number;
  layer?: string;
}

const cases: Case[] = [
  {
    name: 'bundled U-Net (64x64, bottleneck)',
    model: 'models/unet-texture-mnist-biased/model.json',
    image: 'fixtures/tiles/sample.png',
    region: R.whole(),
    classId: 1,
  },
  {
    name: 'selfie (256x256, 16x16 encoder output)',
    model: 'models/selfie/selfie.json',
    image: 'fixtures/images/astronaut.png',
    region: R.classRegion(),
    classId: 1,
    layer: 'add_4__xeno_compat__1',
  },
];

async function bench(backend: BackendName) {
  await setupBackend(backend);
  const batchRows: string[] = [];
  const soakRows: string[] = [];
  console.log(`\nbackend: ${tf.getBackend()}`);
  console.log(
    '| model | forward ms (median) | explain ms (median, forward + backward) | new region on cached forward ms | explain / forward |',
  );
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

    // 16 single-pixel regions on a grid: 16 single calls vs one batched backward pass.
    const regions = Array.from({ length: 16 }, (_, i) =>
      R.pixel(Math.floor((((i % 4) + 0.5) * image.width) / 4), Math.floor(((Math.floor(i / 4) + 0.5) * image.height) / 4)),
    );
    const requests = regions.map((region) => ({ region, classId: c.classId, layer: c.layer }));
    const singles = await time(async () => {
      for (const r of requests) await explainer.explain(image, r);
    });
    const batched = await time(async () => {
      await explainer.explainMany(image, requests);
    });
    batchRows.push(
      `| ${c.name} | ${median(singles).toFixed(1)} | ${median(batched).toFixed(1)} | ${(median(singles) / median(batched)).toFixed(2)} |`,
    );

    if (SOAK > 0 && c === cases[0]) {
      const tensors = tf.memory().numTensors;
      const rss = process.memoryUsage().rss;
      const t = performance.now();
      for (let i = 0; i < SOAK; i++) {
        explainer.release(); // a new forward pass every time, as for a new image
        await explainer.explain(image, requests[i % requests.length]);
      }
      soakRows.push(
        `${c.name}: ${SOAK} explanations in ${((performance.now() - t) / 1000).toFixed(1)} s; tensors ${tensors} → ${tf.memory().numTensors}; RSS ${(rss / 2 ** 20).toFixed(0)} → ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
      );
    }
    explainer.dispose();
  }
  console.log('\n| model | 16 regions, single calls ms | 16 regions, one batched pass ms | speed-up |');
  console.log('| --- | --- | --- | --- |');
  for (const row of batchRows) console.log(row);
  for (const row of soakRows) console.log(`\nmemory: ${row}`);
}

console.log(`${machineLine()}; tfjs ${tf.version.tfjs}; ${RUNS} runs after one warm-up`);
const backends = (process.env.BENCH_BACKENDS ?? 'wasm,cpu').split(',') as BackendName[];
tf.enableProdMode();
for (const b of backends) await bench(b);
