/**
 * Turns a PyTorch run of scripts/bias/train.py into a TF.js LayersModel of the project's U-Net:
 *   node --import tsx scripts/bias/import-torch.ts RUN_DIR OUT_DIR --command "…"
 * builds src/unet/build.ts's U-Net with the run's depth and base, sets every layer's weights from
 * RUN_DIR/torch-weights.{json,bin} (already in TF.js layout), checks that TF.js labels the first
 * held-out tiles as PyTorch did (agreement ≥ 99.9 % of pixels, else exit 1), and writes
 * OUT_DIR/{model.json,weights.bin,training.json}.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../../src/backend/index.js';
import { buildUnet } from '../../src/unet/build.js';
import { saveModelDir } from '../../src/unet/model-files.js';
import { CLASS_NAMES } from '../../src/data/texture-mnist.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { command: { type: 'string', default: '' } },
});
const [runDir, outDir] = positionals;
await setupBackend('wasm');
interface Run {
  options: { base: number; depth: number; seed: number; steps: number; eval: string; [k: string]: unknown };
  trainTiles: { count: number; options: Record<string, unknown> & { size: number; arm: string; biasDigit: number; biasTexture: string } };
  evalTiles: { count: number; options: Record<string, unknown>; split: string };
  finalMetrics: { meanIou: number; perClassIou: number[]; pixelAccuracy: number };
  [k: string]: unknown;
}
const run = JSON.parse(await readFile(join(runDir, 'torch-run.json'), 'utf8')) as Run;
const layers = JSON.parse(await readFile(join(runDir, 'torch-weights.json'), 'utf8')) as Array<{ name: string; shapes: number[][] }>;
const bytes = await readFile(join(runDir, 'torch-weights.bin'));
const flat = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const size = run.trainTiles.options.size;
const model = buildUnet({
  inputSize: [size, size],
  depth: run.options.depth,
  base: run.options.base,
  batchNorm: true,
  seed: run.options.seed,
});
let at = 0;
for (const { name, shapes } of layers) {
  const tensors = shapes.map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(flat.subarray(at, at + n), shape);
    at += n;
    return t;
  });
  model.getLayer(name).setWeights(tensors);
  tensors.forEach((t) => t.dispose());
}
if (at !== flat.length) throw new Error(`weights: used ${at} of ${flat.length} floats`);

// cross-engine check on the held-out tiles PyTorch predicted
const evalFile = run.options.eval;
const raw = await readFile(evalFile);
const torchPred = await readFile(join(runDir, 'torch-pred.bin'));
const nTiles = torchPred.length / (size * size);
const n = size * size;
const x = new Float32Array(nTiles * n * 3);
for (let t = 0; t < nTiles; t++) for (let i = 0; i < n * 3; i++) x[t * n * 3 + i] = raw[t * n * 4 + i] / 255;
const pred = tf.tidy(() => (model.predict(tf.tensor4d(x, [nTiles, size, size, 3])) as tf.Tensor4D).argMax(-1).dataSync());
let agree = 0;
for (let i = 0; i < pred.length; i++) if (pred[i] === torchPred[i]) agree++;
const agreement = agree / pred.length;
process.stderr.write(`TF.js vs PyTorch labels on ${nTiles} held-out tiles: ${(agreement * 100).toFixed(3)} % agree\n`);
if (agreement < 0.999) process.exit(1);

const gen = run.trainTiles.options;
await saveModelDir(model, outDir, {
  classNames: [...CLASS_NAMES],
  inputRange: [0, 1],
  dataset: {
    name: 'bias-tiles (seg-grad-cam)',
    arm: gen.arm,
    size,
    seed: run.options.seed,
    biasDigit: gen.biasDigit,
    biasClass: gen.biasDigit + 1,
    biasTexture: gen.biasTexture,
    generator: gen,
  },
});
const perClassIou = Object.fromEntries(CLASS_NAMES.map((c, i) => [c, run.finalMetrics.perClassIou[i]]));
const training = {
  tool: 'scripts/bias/train.py (PyTorch) + scripts/bias/import-torch.ts',
  command: values.command,
  seed: run.options.seed,
  steps: run.options.steps,
  params: run.params,
  options: run.options,
  trainTiles: run.trainTiles,
  evalTiles: run.evalTiles,
  finalMetrics: { split: run.evalTiles.split, tiles: run.evalTiles.count, ...run.finalMetrics, perClassIou },
  crossEngineAgreement: { tiles: nTiles, pixelAgreement: agreement },
  trainSeconds: run.trainSeconds,
  stepsPerSecond: run.stepsPerSecond,
  losses: run.losses,
  versions: { torch: run.torch, node: process.version, tfjs: tf.version.tfjs },
};
await writeFile(join(outDir, 'training.json'), JSON.stringify(training, null, 1) + '\n');
