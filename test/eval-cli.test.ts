// `seg-grad-cam evaluate` end to end on two tiny untrained U-Nets and 16x16 tiles (fast: a few seconds per run).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildUnet } from '../src/unet/build.js';
import { saveModel } from './helpers/save-model.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-eval-'));
const models: string[] = [];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'evaluate', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEG_GRAD_CAM_DEBUG: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TINY = [
  '--tiles',
  '2',
  '--curve-tiles',
  '1',
  '--sanity-tiles',
  '1',
  '--alpha-tiles',
  '1',
  '--alpha-pixels',
  '3',
  '--check-tiles',
  '30',
  '--steps',
  '2',
  '--random-orders',
  '1',
];
const METHODS = ['--methods', 'seg-grad-cam,eigen-cam,saliency,score-cam', '--score-cam-channels', '2'];

/** results.json without the timings (the only part that may differ between runs). */
function numbers(path: string): unknown {
  const r = JSON.parse(readFileSync(path, 'utf8')) as { timing?: unknown; conditions: Array<{ ms?: unknown }> };
  delete r.timing;
  for (const c of r.conditions) delete c.ms;
  return r;
}

before(async () => {
  await tf.setBackend('cpu');
  const dataset = {
    name: 'texture-mnist (seg-grad-cam)',
    size: 16,
    seed: 1,
    biasDigit: 3,
    biasClass: 4,
    biasTexture: 'brick',
    biasStrength: 1,
  };
  const classNames = ['background', ...Array.from({ length: 10 }, (_, k) => `digit ${k}`)];
  for (const [name, seed] of [
    ['biased', 1],
    ['unbiased', 2],
  ] as const) {
    const model = buildUnet({ inputSize: [16, 16], depth: 1, base: 2, classes: 11, seed });
    models.push(await saveModel(model, join(dir, name), { classNames, dataset }));
    model.dispose();
  }
});

// Fast by construction: 16x16 tiles, two tiles, four methods, two curve steps; the timeout guards it.
describe('seg-grad-cam evaluate (tiny models, fast)', { timeout: 120_000 }, () => {
  test('writes report.md, the plots and results.json; re-runs give the same numbers', () => {
    const outs = [join(dir, 'run1'), join(dir, 'run2')];
    for (const out of outs) {
      const r = cli('--models', models.join(','), ...TINY, ...METHODS, '--out', out, '--no-progress');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /wrote .*report\.md/);
    }
    const md = readFileSync(join(outs[0], 'report.md'), 'utf8');
    for (const heading of [
      '## Summary',
      '## 0. Is the shortcut there?',
      '## 1. Bias detection',
      '## 2. Deletion and insertion',
      '## 3. Sanity checks',
      '## 4. Layer sweep',
      '## 5. α across locations',
      '## 6. Cost',
    ]) {
      assert.ok(md.includes(heading), `missing ${heading}`);
    }
    assert.match(md, /AUROC/);
    assert.match(md, /seed \| 0 /);
    assert.match(md, /--tiles 2 --curve-tiles 1 --sanity-tiles 1/, 'the reproducing command');
    for (const png of [
      'bias-shares.png',
      'layer-sweep.png',
      'deletion-insertion.png',
      'sanity.png',
      'alpha-cosine.png',
      'alpha-embedding.png',
      'examples.png',
    ]) {
      const bytes = readFileSync(join(outs[0], png));
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${png} is a PNG`);
      assert.ok(md.includes(`(${png})`), `${png} is linked from the report`);
    }
    const r1 = numbers(join(outs[0], 'results.json')) as {
      conditions: Array<{ method: string; layer: string; shares: number[][]; sanity: number[][] }>;
    };
    assert.deepEqual(r1, numbers(join(outs[1], 'results.json')), 'deterministic apart from timings');
    // Two tiles per model, three layers for the CAM methods, one "layer" (input) for saliency.
    assert.equal(r1.conditions.length, 3 * 3 + 1);
    assert.equal(r1.conditions[0].shares[0].length, 2);
    assert.equal(r1.conditions[0].sanity.length, 4, 'blocks logits, dec1, bottleneck, enc1 of a depth-1 U-Net');
  });

  test('a bad option is one line on stderr and exit code 2, nothing written', () => {
    const out = join(dir, 'bad');
    let r = cli('--models', models.join(','), '--tiles', '0', '--out', out);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /--tiles expects an integer >= 1/);
    r = cli('--models', models.join(','), '--methods', 'seg-grad-cam,nope', '--out', out);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope/);
    r = cli('--models', join(dir, 'missing.json'), '--out', out);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /model file not found/);
    assert.equal(existsSync(join(out, 'report.md')), false);
  });
});
