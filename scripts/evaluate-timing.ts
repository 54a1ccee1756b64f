// Dev helper (temporary): run a small evaluation once and cache it; re-render the report from the cache.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { buildReport } from '../src/eval/report.js';
import { DEFAULT_METHODS, runEvaluation, type EvaluationResults } from '../src/eval/run.js';
const cache = '/tmp/eval-cache.bin';
let r: EvaluationResults;
if (existsSync(cache) && !process.argv.includes('--fresh')) r = deserialize(readFileSync(cache)) as EvaluationResults;
else {
  await setupBackend('wasm');
  tf.enableProdMode();
  r = await runEvaluation({ models: ['/tmp/dev-biased/model.json', '/tmp/dev-b2/model.json'], tiles: 6, curveTiles: 3, sanityTiles: 1, alphaTiles: 2, alphaPixels: 12, methods: DEFAULT_METHODS, steps: 8, randomOrders: 1, seed: 0 });
  writeFileSync(cache, serialize(r));
}
const rep = buildReport(r, { command: 'seg-grad-cam evaluate …' });
mkdirSync('/tmp/evaltest', { recursive: true });
for (const [k, v] of Object.entries(rep.images)) writeFileSync(join('/tmp/evaltest', k), v);
writeFileSync('/tmp/evaltest/report.md', rep.markdown);
