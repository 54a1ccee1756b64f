/**
 * One model of the bias study, in its own process (scripts/bias/report.ts runs two at a time):
 * `node --import tsx scripts/bias/study-model.ts DIR ARM SEED OUT.json OPTIONS-JSON`.
 */
import { writeFile } from 'node:fs/promises';
import { setupBackend } from '../../src/backend/index.js';
import { isBiasArm } from '../../src/data/bias-tiles.js';
import { studyModel, type StudyOptions } from '../../src/eval/bias-study.js';

const [dir, arm, seed, out, json] = process.argv.slice(2);
if (!isBiasArm(arm)) throw new Error(`bad arm ${arm}`);
const options = JSON.parse(json) as StudyOptions & { context: boolean };
await setupBackend('wasm');
let ticks = 0;
const result = await studyModel(
  { arm, seed: Number(seed), dir },
  options,
  () => {
    ticks++;
    if (ticks % 25 === 0) process.stderr.write(`${arm}-seed${seed}: ${ticks} tiles explained\n`);
  },
  options.context,
);
await writeFile(out, JSON.stringify(result));
