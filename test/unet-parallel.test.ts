import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { quickPreset } from '../src/cli/commands/train.js';
import { SegGradCamError } from '../src/errors.js';
import { NUM_CLASSES } from '../src/data/texture-mnist.js';
import { buildUnet } from '../src/unet/build.js';
import { DataParallelPool, liveTrainWorkers, shardIndices, TrainWorkerError } from '../src/unet/parallel.js';
import { datasetFor, trainTiles, workerConfig } from '../src/unet/dataset.js';
import { learningRate, segmentationLoss } from '../src/unet/loss.js';
import { loadModelDir } from '../src/unet/model-files.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../src/unet/options.js';
import { trainUnet } from '../src/unet/train.js';
import { setupBackend } from '../src/backend/index.js';
import { maxAbs, maxAbsDiff } from './helpers/setup.js';

let tmp: string;
// wasm (what `train` uses; much faster than cpu for training): the workers take the main thread's backend
before(async () => {
  await setupBackend('wasm');
  tmp = await mkdtemp(join(tmpdir(), 'sgc-unet-par-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A tiny U-Net run: 32x32, depth 2, base 4, batch 4, batch norm. */
const tiny = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  ...DEFAULT_TRAIN_OPTIONS,
  outDir,
  steps: 1,
  batch: 4,
  size: 32,
  depth: 2,
  base: 4,
  warmupSteps: 1,
  checkpointEvery: 2,
  evalTiles: 0,
  valTiles: 0,
  calibrate: false,
  workers: 2,
  ...extra,
});

describe('data-parallel training (workers > 1)', () => {
  test('contiguous shards differ in size by at most one', () => {
    assert.deepEqual(shardIndices([0, 1, 2, 3, 4], 2), [
      [0, 1, 2],
      [3, 4],
    ]);
    assert.deepEqual(shardIndices([8, 9, 10, 11], 2), [
      [8, 9],
      [10, 11],
    ]);
    assert.deepEqual(shardIndices([1, 2, 3], 3), [[1], [2], [3]]);
  });

  test('--quick fine-tunes the bundled unbiased twin (held-out IoU high after 2 steps); --from-scratch does not', () => {
    const train = (out: string, ...extra: string[]) => {
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/run.ts',
          'train',
          '--quick',
          '--steps',
          '2',
          '--workers',
          '1',
          '--eval-tiles',
          '16',
          '--val-tiles',
          '8',
          '--no-calibrate',
          '--no-progress',
          '--out',
          out,
          ...extra,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stderr;
    };
    const read = async (dir: string) =>
      JSON.parse(await readFile(join(dir, 'training.json'), 'utf8')) as { options: TrainOptions; finalMetrics: { meanIou: number } };
    const fine = join(tmp, 'quick');
    assert.match(train(fine), /--quick: fine-tuning models\/unet-texture-mnist-unbiased/);
    const scratch = join(tmp, 'quick-scratch');
    train(scratch, '--from-scratch');
    return Promise.all([read(fine), read(scratch)]).then(([f, r]) => {
      assert.equal(resolve(f.options.initFrom ?? ''), resolve('models/unet-texture-mnist-unbiased'));
      assert.equal(r.options.initFrom, undefined);
      // The twin's held-out mean IoU is 0.83; two steps of random weights give almost nothing.
      assert.ok(f.finalMetrics.meanIou > 0.6, `fine-tuned: ${f.finalMetrics.meanIou}`);
      assert.ok(r.finalMetrics.meanIou < 0.2, `from scratch: ${r.finalMetrics.meanIou}`);
    });
  });

  test('--quick takes 2 workers only with at least 2 CPUs', () => {
    assert.equal(quickPreset(1).workers, 1);
    assert.equal(quickPreset(2).workers, 2);
    assert.equal(quickPreset(8).workers, 2);
    assert.equal(DEFAULT_TRAIN_OPTIONS.workers, 1);
  });

  test('one step with 2 workers = Adam on the mean of the two half-batch gradients (batch-norm statistics per half)', async () => {
    const o = tiny(join(tmp, 'one-step'));
    const result = await trainUnet(o);
    assert.equal(result.steps, 1);
    assert.equal(liveTrainWorkers(), 0);
    const trained = await loadModelDir(o.outDir);

    // the same step computed here, in process, half batch by half batch
    const model = buildUnet({
      inputSize: [o.size, o.size],
      channels: 3,
      classes: NUM_CLASSES,
      depth: o.depth,
      base: o.base,
      batchNorm: o.batchNorm,
      seed: o.seed,
    });
    const data = await datasetFor(o);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const stats0 = model.nonTrainableWeights.map((w) => w.read().clone());
    const halves = [
      [0, 1],
      [2, 3],
    ];
    const grads: tf.Tensor[][] = [];
    const stats: tf.Tensor[][] = [];
    const losses: number[] = [];
    for (const idx of halves) {
      model.nonTrainableWeights.forEach((w, i) => w.write(stats0[i]));
      const { x, oh, ow } = trainTiles(data, o, result.classWeights, idx);
      const n = idx.length;
      const xt = tf.tensor4d(x, [n, o.size, o.size, 3]);
      const yt = tf.tensor4d(oh, [n, o.size, o.size, NUM_CLASSES]);
      const wt = tf.tensor4d(ow, [n, o.size, o.size, NUM_CLASSES]);
      const { value, grads: g } = tf.variableGrads(
        () => segmentationLoss(model.apply(xt, { training: true }) as tf.Tensor4D, yt, wt, o.ceWeight, o.diceWeight),
        vars,
      );
      losses.push(value.dataSync()[0]);
      grads.push(vars.map((v) => g[v.name]));
      stats.push(model.nonTrainableWeights.map((w) => w.read().clone()));
      tf.dispose([value, xt, yt, wt]);
    }
    const mean = grads[0].map((g, i) => ({ name: vars[i].name, tensor: tf.add(tf.mul(g, 0.5), tf.mul(grads[1][i], 0.5)) }));
    const opt = tf.train.adam(learningRate(0, o));
    opt.applyGradients(mean);
    assert.ok(
      Math.abs(result.finalLoss - (losses[0] + losses[1]) / 2) < 1e-6 * Math.abs(result.finalLoss),
      `loss ${result.finalLoss} vs ${losses}`,
    );

    const got = trained.trainableWeights.map((w) => w.read().dataSync());
    assert.equal(got.length, vars.length);
    let worst = 0;
    vars.forEach((v, i) => {
      const want = v.dataSync();
      const rel = maxAbsDiff(got[i], want) / Math.max(maxAbs(want), 1e-3);
      worst = Math.max(worst, rel);
    });
    assert.ok(worst < 1e-6, `trainable weights differ by ${worst} (relative)`);
    // the step moved the weights at all (by ~lr per element)
    const init = buildUnet({ inputSize: [o.size, o.size], depth: o.depth, base: o.base, seed: o.seed });
    assert.ok(maxAbsDiff(init.trainableWeights[0].read().dataSync(), got[0]) > 1e-5);
    // moving statistics: the mean of the two halves' updates
    const gotStats = trained.nonTrainableWeights.map((w) => w.read().dataSync());
    assert.ok(gotStats.length > 0);
    stats[0].forEach((s, i) => {
      const want = tf.tidy(() => tf.mul(tf.add(s, stats[1][i]), 0.5).dataSync());
      assert.ok(maxAbsDiff(gotStats[i], want) <= 1e-6 * Math.max(1, maxAbs(want)), `moving statistic ${i}`);
    });
    tf.dispose([...stats0, ...grads.flat(), ...stats.flat(), ...mean.map((m) => m.tensor)]);
    opt.dispose();
    [model, trained, init].forEach((m) => m.dispose());
  });

  test('workers 2: checkpoint, resume and finish; a resumed run equals a straight one; no worker left', async () => {
    const straight = await trainUnet(tiny(join(tmp, 'straight'), { steps: 4, valTiles: 2 }));
    assert.equal(straight.steps, 4);
    assert.equal(straight.options.workers, 2);
    assert.equal(liveTrainWorkers(), 0);
    const half = await trainUnet(tiny(join(tmp, 'half'), { steps: 2 }));
    assert.equal(half.steps, 2);
    const resumed = await trainUnet(tiny(join(tmp, 'resumed'), { steps: 4, valTiles: 2, resume: join(tmp, 'half', 'checkpoint') }));
    assert.equal(resumed.resumedFrom?.step, 2);
    assert.equal(resumed.steps, 4);
    assert.equal(liveTrainWorkers(), 0);
    const [a, b] = [await loadModelDir(join(tmp, 'straight')), await loadModelDir(join(tmp, 'resumed'))];
    const wa = a.getWeights();
    const wb = b.getWeights();
    let diff = 0;
    wa.forEach((w, i) => (diff = Math.max(diff, maxAbsDiff(w.dataSync(), wb[i].dataSync()))));
    assert.ok(diff < 1e-5, `resumed weights differ by ${diff}`);
    [a, b].forEach((m) => m.dispose());
  });

  test('errors in a worker surface as typed errors and every worker is terminated', async () => {
    const o = tiny(join(tmp, 'err'));
    const model = buildUnet({ inputSize: [32, 32], depth: 2, base: 4, seed: 1 });
    // a bad option that only the worker sees: its dataset refuses it (a usage error keeps its type and code)
    const bad = { ...workerConfig(o, new Array(NUM_CLASSES).fill(1)), data: { size: 32, biasTexture: 'marble' as never } };
    await assert.rejects(
      DataParallelPool.start(model, bad, 2),
      (e: unknown) =>
        e instanceof SegGradCamError && e.code === 'usage' && /training worker \d: unknown bias texture 'marble'/.test(e.message),
    );
    assert.equal(liveTrainWorkers(), 0);
    // a failure inside a step (tiles of the wrong size for the model): TrainWorkerError, pool closed by its owner
    // (18x18 tiles: the depth-2 U-Net's skip and upsampled paths no longer have the same size)
    const pool = await DataParallelPool.start(
      model,
      { ...workerConfig(o, new Array(NUM_CLASSES).fill(1)), data: { ...workerConfig(o, []).data, size: 18 } },
      2,
    );
    try {
      await assert.rejects(
        pool.step([0, 1, 2, 3], model),
        (e: unknown) => e instanceof TrainWorkerError && /training worker \d failed/.test(e.message),
      );
    } finally {
      await pool.close();
    }
    assert.equal(liveTrainWorkers(), 0);
    // more workers than tiles per batch: refused before any worker starts
    await assert.rejects(trainUnet({ ...o, workers: 5 }), (e: unknown) => e instanceof SegGradCamError && e.code === 'usage');
    model.dispose();
  });

  // the CLI in a child process: it must exit by itself (no worker left running), from source (tsx:
  // the .ts worker entry) and, when built, from dist/ (the .js entry)
  const cliArgs = (out: string): string[] => [
    'train',
    '--out',
    out,
    '--workers',
    '2',
    '--steps',
    '2',
    '--batch',
    '4',
    '--size',
    '32',
    '--depth',
    '2',
    '--base',
    '4',
    '--warmup',
    '1',
    '--checkpoint-every',
    '1',
    '--eval-tiles',
    '4',
    '--val-tiles',
    '2',
    '--no-calibrate',
    '--no-progress',
  ];
  const runCli = async (entry: string[], out: string, extra: string[] = []): Promise<Record<string, unknown>> => {
    const r = spawnSync(process.execPath, [...entry, ...cliArgs(out), ...extra], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, SEG_GRAD_CAM_DEBUG: '1' },
    });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
    return JSON.parse(await readFile(join(out, 'training.json'), 'utf8')) as Record<string, unknown>;
  };

  test('CLI from source: --workers 2 trains, resumes and the process exits', async () => {
    const out = join(tmp, 'cli-src');
    const first = await runCli(['--import', 'tsx', 'src/cli/run.ts'], out);
    assert.equal((first.options as TrainOptions).workers, 2);
    const again = await runCli(['--import', 'tsx', 'src/cli/run.ts'], join(tmp, 'cli-src-resumed'), [
      '--resume',
      join(out, 'checkpoint'),
      '--steps',
      '3',
    ]);
    assert.equal(again.steps, 3);
  });

  const built = resolve('dist/unet/train-worker.js');
  test(
    'CLI from the build (dist/): --workers 2 starts the .js workers',
    { skip: existsSync(built) ? false : 'not built (npm run build)' },
    async () => {
      const record = await runCli(['bin/seg-grad-cam.js'], join(tmp, 'cli-dist'));
      assert.equal((record.options as TrainOptions).workers, 2);
      assert.equal(record.steps, 2);
    },
  );
});
