// Post-hoc prior correction of a trained U-Net's logits bias (undoes the class weighting's shift of
// the decision boundary): bias_c -= alpha * log(w_c), alpha chosen on held-out validation tiles.
//   node --import tsx scripts/train-calibrate.ts MODEL_DIR [--apply] [--val-tiles N] [--eval-tiles N]
// Reads class weights and data options from MODEL_DIR/checkpoint/state.json.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setupBackend } from '../src/backend/index.js';
import { CLASS_NAMES } from '../src/data/texture-mnist.js';
import {
  calibrateLogitsBias,
  datasetFor,
  evaluate,
  loadModelDir,
  modelMetadata,
  saveModelDir,
  type TrainOptions,
} from '../src/unet/train.js';

const dir = process.argv[2];
const apply = process.argv.includes('--apply');
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
await setupBackend('wasm');
const state = JSON.parse(await readFile(join(dir, 'checkpoint', 'state.json'), 'utf8')) as {
  options: TrainOptions;
  classWeights: number[];
};
const data = await datasetFor(state.options);
const model = await loadModelDir(dir);
const { alpha, scores } = calibrateLogitsBias(model, state.classWeights, data, arg('--val-tiles', 300));
console.log('validation mean IoU by alpha:', scores.map(([a, s]) => `${a}: ${s.toFixed(4)}`).join(', '), '→ alpha', alpha);
if (apply) {
  await saveModelDir(model, dir, { ...modelMetadata(state.options), logitsPriorCorrection: alpha });
  const ev = evaluate(model, data, arg('--eval-tiles', state.options.evalTiles), 0);
  const perClass: Record<string, number> = {};
  ev.perClassIou.forEach((v, c) => (perClass[CLASS_NAMES[c]] = v));
  const file = join(dir, 'training.json');
  const record = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  record.finalMetricsBeforeCalibration = record.finalMetrics;
  record.finalMetrics = { split: 'heldout', tiles: ev.tiles, meanIou: ev.meanIou, perClassIou: perClass, pixelAccuracy: ev.pixelAccuracy };
  record.calibration = {
    method: 'logits bias -= alpha * log(class weight)',
    alpha,
    validationMeanIouByAlpha: Object.fromEntries(scores),
    validationTiles: arg('--val-tiles', 300),
  };
  await writeFile(file, JSON.stringify(record, null, 2) + '\n');
  console.log('held-out mean IoU', ev.meanIou.toFixed(4), ev.perClassIou.map((v) => v.toFixed(3)).join(' '));
}
