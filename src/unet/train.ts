/**
 * The training loop of the project's U-Net on the TextureMNIST-style set (Node: checkpoints go to disk).
 *
 * Recipe (see docs/training.md): Adam, linear warm-up then cosine decay of the learning rate,
 * class-weighted softmax cross-entropy plus soft Dice (loss.ts; plain cross-entropy stays at "all
 * background" for a long time: ~88 % of the pixels are background), batch norm, and an endless
 * stream of fresh tiles (tile i of step s is train tile s * batch + i, so a resumed run sees the
 * same data as an uninterrupted one; dataset.ts). Left-right flips are optional and off by default
 * (a mirrored digit is not a digit).
 *
 * Checkpoints (every `checkpointEvery` steps, and at the end; checkpoint.ts) hold the model, the
 * Adam state (so a resumed run continues exactly, up to float summation order) and the step.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { NUM_CLASSES } from '../data/texture-mnist.js';
import { buildUnet } from './build.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { calibrateLogitsBias, datasetFor, evaluate, trainTiles, workerConfig } from './dataset.js';
import { classWeightsFromFrequencies, learningRate, segmentationLoss } from './loss.js';
import { Confusion } from './metrics.js';
import { loadModelDir, modelMetadata, saveModelDir } from './model-files.js';
import { validateTrainOptions, type TrainOptions, type TrainProgress, type TrainResult } from './options.js';
import { DataParallelPool } from './parallel.js';

function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}

/**
 * Trains (or resumes) a U-Net; writes checkpoints to outDir/checkpoint and the final model to
 * outDir (model.json, weights.bin). Returns the metrics; the caller writes training.json.
 */
export async function trainUnet(options: TrainOptions, onProgress?: (p: TrainProgress) => void): Promise<TrainResult> {
  const t0 = performance.now();
  const o: TrainOptions = { ...options, outDir: resolve(options.outDir), workers: options.workers ?? 1 };
  validateTrainOptions(o);
  const data = await datasetFor(o);
  const size = o.size;

  let model: tf.LayersModel;
  let startStep = 0;
  let history: TrainResult['history'] = [];
  let priorSeconds = 0;
  let classWeights: number[];
  const optimizer = tf.train.adam(learningRate(0, o));
  let resumedFrom: TrainResult['resumedFrom'];
  if (o.resume) {
    const ck = await loadCheckpoint(o.resume);
    model = ck.model;
    startStep = ck.state.step;
    history = ck.state.history;
    priorSeconds = ck.state.trainSeconds;
    classWeights = ck.state.classWeights;
    await optimizer.setWeights(ck.optimizerWeights);
    resumedFrom = { dir: resolve(o.resume), step: startStep, checkpoint: ck.dir };
  } else {
    model = o.initFrom
      ? await loadModelDir(o.initFrom)
      : buildUnet({
          inputSize: [size, size],
          channels: 3,
          classes: NUM_CLASSES,
          depth: o.depth,
          base: o.base,
          batchNorm: o.batchNorm,
          seed: o.seed,
        });
    const inShape = model.inputs[0].shape;
    if (inShape[1] !== size || inShape[2] !== size)
      throw new SegGradCamError(`--init-from model takes ${inShape[1]}x${inShape[2]} tiles, not ${size}x${size}`, 'usage');
    // class frequencies from 256 training tiles far from the training stream's start
    const freqConf = new Confusion(NUM_CLASSES);
    const idx = Array.from({ length: 256 }, (_, i) => 2_000_000_000 + i);
    const { y } = data.arrays('train', idx);
    freqConf.add(y, y);
    const total = y.length;
    const freq = Array.from({ length: NUM_CLASSES }, (_, c) => freqConf.counts[c * NUM_CLASSES + c] / total);
    classWeights = classWeightsFromFrequencies(freq, o.classWeightPower);
  }
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const checkpointDir = join(o.outDir, 'checkpoint');
  await mkdir(o.outDir, { recursive: true });

  const running = new Confusion(NUM_CLASSES);
  const recentLoss: number[] = [];
  let lastLoss = NaN;
  let valIou: number | undefined;
  let trainMs = 0;

  const report = (phase: TrainProgress['phase'], step: number, lr: number): void => {
    const done = step - startStep;
    const sps = done > 0 ? done / (trainMs / 1000) : 0;
    onProgress?.({
      phase,
      step,
      totalSteps: o.steps,
      loss: recentLoss.length ? recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length : NaN,
      lr,
      runningIou: running.meanIou(),
      stepsPerSecond: sps,
      etaSeconds: o.timeBudgetSeconds
        ? Math.max(0, Math.min(sps > 0 ? (o.steps - step) / sps : Infinity, o.timeBudgetSeconds - priorSeconds - trainMs / 1000))
        : sps > 0
          ? (o.steps - step) / sps
          : NaN,
      valIou,
    });
  };

  const progressAt = (step: number): number =>
    o.timeBudgetSeconds ? Math.max(step / o.steps, (priorSeconds + trainMs / 1000) / o.timeBudgetSeconds) : step / o.steps;
  const workers = o.workers ?? 1;
  // workers > 1: data-parallel steps in worker threads (src/unet/parallel.ts); 1 = the in-process loop below
  const pool = workers > 1 ? await DataParallelPool.start(model, workerConfig(o, classWeights), workers) : undefined;
  let finalStep = startStep;
  try {
    for (let step = startStep; step < o.steps; step++) {
      if (step > startStep && progressAt(step) >= 1) break;
      const ts = performance.now();
      const lr = learningRate(step, o, progressAt(step));
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const idx = Array.from({ length: o.batch }, (_, i) => step * o.batch + i);
      if (pool) {
        // data-parallel step (workers > 1): see src/unet/parallel.ts
        const r = await pool.step(idx, model);
        lastLoss = r.loss;
        if (!Number.isFinite(lastLoss)) throw new Error(`training diverged at step ${step} (loss ${lastLoss}); try a lower --lr`);
        const named = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(r.grads[i], v.shape, 'float32') }));
        optimizer.applyGradients(named);
        tf.dispose(named.map((g) => g.tensor));
        running.decay(0.97);
        for (let i = 0; i < r.confusion.length; i++) running.counts[i] += r.confusion[i];
      } else {
        const { x, y, oh, ow } = trainTiles(data, o, classWeights, idx);
        const xt = tf.tensor4d(x, [o.batch, size, size, 3]);
        const yt = tf.tensor4d(oh, [o.batch, size, size, NUM_CLASSES]);
        const wt = tf.tensor4d(ow, [o.batch, size, size, NUM_CLASSES]);
        let pred: tf.Tensor | undefined;
        const lossT = optimizer.minimize(
          () => {
            const logits = model.apply(xt, { training: true }) as tf.Tensor4D;
            pred = tf.keep(tf.argMax(logits, -1));
            return segmentationLoss(logits, yt, wt, o.ceWeight, o.diceWeight);
          },
          true,
          vars,
        ) as tf.Scalar;
        lastLoss = (await lossT.data())[0];
        const p = pred ? pred.dataSync() : new Int32Array(y.length);
        tf.dispose([lossT, xt, yt, wt, pred as tf.Tensor]);
        if (!Number.isFinite(lastLoss)) throw new Error(`training diverged at step ${step} (loss ${lastLoss}); try a lower --lr`);
        running.decay(0.97).add(y, p);
      }
      recentLoss.push(lastLoss);
      if (recentLoss.length > 20) recentLoss.shift();
      trainMs += performance.now() - ts;
      const s = step + 1;
      finalStep = s;
      if (s % 10 === 0 || s === o.steps) report('train', s, lr);
      if (o.timeBudgetSeconds && progressAt(s) >= 1) break;
      if (s % 50 === 0)
        history.push({
          step: s,
          loss: recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length,
          runningIou: running.meanIou(),
          lr,
          seconds: (priorSeconds * 1000 + trainMs) / 1000,
        });
      if (s % o.checkpointEvery === 0 && s < o.steps) {
        if (o.valTiles > 0) {
          report('eval', s, lr);
          valIou = evaluate(model, data, o.valTiles, 1_000_000).meanIou;
          if (history.length) history[history.length - 1].valIou = valIou;
        }
        report('checkpoint', s, lr);
        await saveCheckpoint(checkpointDir, model, optimizer, {
          step: s,
          options: o,
          classWeights,
          history,
          trainSeconds: priorSeconds + trainMs / 1000,
        });
      }
    }
  } finally {
    await pool?.close();
  }
  const trainSeconds = priorSeconds + trainMs / 1000;
  const endLr = learningRate(finalStep, o, progressAt(finalStep));
  await saveCheckpoint(checkpointDir, model, optimizer, { step: finalStep, options: o, classWeights, history, trainSeconds });
  let calibration: TrainResult['calibration'];
  if (o.calibrate ?? true) {
    report('eval', finalStep, endLr);
    const valTiles = Math.max(o.valTiles, 200);
    const { alpha, scores } = calibrateLogitsBias(model, classWeights, data, valTiles);
    calibration = { alpha, validationMeanIouByAlpha: scores, validationTiles: valTiles };
  }
  await saveModelDir(model, o.outDir, { ...modelMetadata(o), ...(calibration ? { logitsPriorCorrection: calibration.alpha } : {}) });
  report('eval', finalStep, endLr);
  const ev = o.evalTiles > 0 ? evaluate(model, data, o.evalTiles, 0) : { tiles: 0, perClassIou: [], meanIou: NaN, pixelAccuracy: NaN };
  report('done', finalStep, endLr);
  const doneSteps = finalStep - startStep;
  const result: TrainResult = {
    options: o,
    steps: finalStep,
    finalLoss: lastLoss,
    eval: ev,
    wallSeconds: (performance.now() - t0) / 1000,
    trainSeconds,
    stepsPerSecond: doneSteps > 0 ? doneSteps / (trainMs / 1000) : NaN,
    resumedFrom,
    classWeights,
    calibration,
    history,
    backend: tf.getBackend(),
    params: countParams(model),
  };
  optimizer.dispose();
  model.dispose();
  return result;
}
