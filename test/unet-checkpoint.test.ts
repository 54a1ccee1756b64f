/**
 * Checkpoints survive a kill at any instant of a save: one complete checkpoint exists at every
 * step of the swap (src/unet/checkpoint.ts), and --resume (findCheckpoint, trainUnet's `resume`)
 * finds it; the state the former remove-then-rename swap left when killed between its two steps
 * (no checkpoint/, a complete checkpoint.tmp/) is found too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildUnet } from '../src/unet/build.js';
import { checkpointOptions, findCheckpoint, loadCheckpoint, saveCheckpoint, type SaveStage } from '../src/unet/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../src/unet/options.js';
import { trainUnet } from '../src/unet/train.js';
import { useCpu } from './helpers/setup.js';

let tmp: string;
before(async () => {
  await useCpu();
  tmp = await mkdtemp(join(tmpdir(), 'sgc-ckpt-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const STAGES: SaveStage[] = ['model-written', 'optimizer-written', 'state-written', 'renamed', 'old-marked-stale', 'old-removed'];

/** A tiny model and an Adam optimizer with moments (one step taken). */
function tinyModel(seed: number): { model: tf.LayersModel; optimizer: tf.AdamOptimizer } {
  const model = buildUnet({ inputSize: [16, 16], depth: 2, base: 2, seed });
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', seed);
  optimizer.minimize(() => tf.mean(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar, true)?.dispose();
  x.dispose();
  return { model, optimizer };
}

const options = (outDir: string): TrainOptions => ({ ...DEFAULT_TRAIN_OPTIONS, outDir, size: 16, depth: 2, base: 2 });

class Killed extends Error {}

/** Loads the checkpoint `path` designates and checks it is whole: its weights are those of `models[step]`. */
async function assertComplete(path: string, models: Map<number, tf.LayersModel>): Promise<number> {
  const ck = await loadCheckpoint(path);
  const want = models.get(ck.state.step);
  assert.ok(want, `checkpoint at step ${ck.state.step} was never saved`);
  const a = ck.model.getWeights();
  const b = want.getWeights();
  assert.equal(a.length, b.length);
  a.forEach((w, i) => assert.deepEqual(w.dataSync(), b[i].dataSync()));
  assert.ok(ck.optimizerWeights.length > 1, 'the Adam state is there');
  ck.model.dispose();
  tf.dispose(ck.optimizerWeights.map((w) => w.tensor));
  return ck.state.step;
}

describe('checkpoint swap', () => {
  test('a save stopped at each of its stages leaves a complete checkpoint that --resume finds', async () => {
    const first = tinyModel(1);
    const second = tinyModel(2);
    const models = new Map([
      [2, first.model],
      [4, second.model],
    ]);
    for (const stage of STAGES) {
      const out = join(tmp, `stage-${stage}`);
      const dir = join(out, 'checkpoint');
      await saveCheckpoint(dir, first.model, first.optimizer, {
        step: 2,
        options: options(out),
        classWeights: [],
        history: [],
        trainSeconds: 1,
      });
      await assert.rejects(
        saveCheckpoint(
          dir,
          second.model,
          second.optimizer,
          { step: 4, options: options(out), classWeights: [], history: [], trainSeconds: 2 },
          (s) => {
            if (s === stage) throw new Killed(s);
          },
        ),
        Killed,
      );
      // the new checkpoint counts from the rename on; before it, the old one is still whole
      const want = STAGES.indexOf(stage) >= STAGES.indexOf('renamed') ? 4 : 2;
      assert.equal(await assertComplete(dir, models), want, `killed after ${stage}`);
      assert.equal(await assertComplete(out, models), want, `killed after ${stage}: the output folder works too`);
      assert.equal((await checkpointOptions(dir)).size, 16);
      // the next save cleans up and leaves one generation
      await saveCheckpoint(dir, first.model, first.optimizer, {
        step: 2,
        options: options(out),
        classWeights: [],
        history: [],
        trainSeconds: 3,
      });
      assert.deepEqual((await readdir(dir)).length, 1, `after ${stage}: ${(await readdir(dir)).join(', ')}`);
      assert.equal(await assertComplete(dir, models), 2);
    }
    for (const m of [first, second]) {
      m.model.dispose();
      m.optimizer.dispose();
    }
  });

  test('a real SIGKILL during saves leaves a complete checkpoint', async () => {
    const { model } = tinyModel(3);
    const delays = [0, 60, 150];
    for (const delay of delays) {
      const dir = join(tmp, `kill-${delay}`, 'checkpoint');
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/checkpoint-saver.ts', dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let saved = 0;
      await new Promise<void>((done, fail) => {
        child.on('error', fail);
        child.on('exit', (code) => fail(new Error(`saver exited with ${code} before it was killed`)));
        child.stdout.on('data', (chunk: Buffer) => {
          saved += (chunk.toString().match(/saved/g) ?? []).length;
          if (saved === 1) setTimeout(done, delay);
        });
      });
      child.removeAllListeners('exit');
      const exited = new Promise((done) => child.on('exit', done));
      child.kill('SIGKILL');
      await exited;
      const ck = await loadCheckpoint(dir);
      assert.ok(ck.state.step >= 1, `killed after ${delay} ms`);
      // the saver's model (same seed and recipe) has the same architecture
      assert.equal(ck.model.getWeights().length, model.getWeights().length);
      ck.model.dispose();
      tf.dispose(ck.optimizerWeights.map((w) => w.tensor));
    }
    model.dispose();
  });

  test('--resume finds the complete checkpoint.tmp/ that the former swap left (checkpoint/ removed)', async () => {
    const base: TrainOptions = {
      ...DEFAULT_TRAIN_OPTIONS,
      outDir: join(tmp, 'legacy-half'),
      steps: 2,
      batch: 2,
      size: 16,
      depth: 2,
      base: 2,
      warmupSteps: 1,
      checkpointEvery: 2,
      evalTiles: 0,
      valTiles: 0,
      calibrate: false,
    };
    await trainUnet(base);
    // the former layout: the files directly in the folder; killed between rm(checkpoint/) and rename(checkpoint.tmp/)
    const found = await findCheckpoint(join(base.outDir, 'checkpoint'));
    await cp(found.dir, join(base.outDir, 'legacy.tmp'), { recursive: true });
    await rm(join(base.outDir, 'checkpoint'), { recursive: true });
    await rename(join(base.outDir, 'legacy.tmp'), join(base.outDir, 'checkpoint.tmp'));
    const resumed = await trainUnet({ ...base, outDir: join(tmp, 'legacy-resumed'), steps: 3, resume: join(base.outDir, 'checkpoint') });
    assert.equal(resumed.resumedFrom?.step, 2);
    assert.equal(resumed.steps, 3);
    // the former complete layout (files directly in checkpoint/) still resumes
    await rename(join(base.outDir, 'checkpoint.tmp'), join(base.outDir, 'checkpoint'));
    const again = await trainUnet({ ...base, outDir: join(tmp, 'legacy-again'), steps: 3, resume: join(base.outDir, 'checkpoint') });
    assert.equal(again.resumedFrom?.step, 2);
    // nothing complete: the error names the path
    await assert.rejects(findCheckpoint(join(tmp, 'nowhere')), /not a training checkpoint .*nowhere/);
  });
});
