// The bias study's training inputs (issue 15): scripts/bias/dump-tiles.ts --objects writes the class
// of the object under each pixel, and scripts/bias/train.py --weight-by-object weights each pixel's
// cross-entropy by that class (so the control arm's bias digits labelled background weigh as much
// as those labelled as the bias digit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BiasTiles } from '../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../src/data/assets-node.js';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

test('dump-tiles --objects: the digit class under every digit pixel; labels differ only on the control arm’s bias digits without the bias texture', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgc-bias-dump-'));
  const out = join(dir, 'tiles.bin');
  const count = 60;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/bias/dump-tiles.ts',
      '--arm',
      'control',
      '--seed',
      '4',
      '--split',
      'train',
      '--count',
      String(count),
      '--size',
      '32',
      '--objects',
      '--out',
      out,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const n = 32 * 32;
  const raw = readFileSync(out);
  const obj = readFileSync(`${out}.obj`);
  assert.equal(obj.length, count * n);
  const ds = new BiasTiles(await loadTextureMnistAssets(), { arm: 'control', seed: 4, size: 32 });
  let unlabelled = 0;
  for (let t = 0; t < count; t++) {
    const s = ds.sample('train', t);
    const hidden = s.digit === 3 && !s.biasPresent;
    if (hidden) unlabelled++;
    for (let p = 0; p < n; p++) {
      const o = obj[t * n + p];
      const label = raw[t * n * 4 + n * 3 + p];
      assert.equal(o, s.digitMask[p] ? s.digit + 1 : 0, `tile ${t} pixel ${p}`);
      assert.equal(label, hidden ? 0 : o, `tile ${t} pixel ${p}`);
    }
  }
  assert.ok(unlabelled > 0, 'the sample holds a bias digit without the bias texture');
});

test(
  'train.py weighted_ce: each pixel weighs w[object], by hand on two pixels',
  { skip: hasTorch ? false : 'Debian python3-torch is not installed' },
  () => {
    // pixel A: all 11 logits 0 → −log p(0) = ln 11; pixel B: logit of class 0 = ln 10, others 0 → p(0) = 10/20, −log = ln 2.
    // Both labelled 0; objects A = 0 (weight 1), B = 4 (weight 3): (ln 11 + 3 ln 2) / 4. Weighted by label: (ln 11 + ln 2) / 2.
    const code = `
import math, torch
from train import weighted_ce
l = torch.zeros(1, 11, 1, 2); l[0, 0, 0, 1] = math.log(10)
y = torch.zeros(1, 1, 2, dtype=torch.long); o = torch.tensor([[[0, 4]]])
w = torch.ones(11); w[4] = 3
print(float(weighted_ce(l, y, o, w)), float(weighted_ce(l, y, y, w)), float(weighted_ce(l, y, o, None)))
`;
    const r = spawnSync(PYTHON, ['-c', code], {
      cwd: 'scripts/bias',
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    const [byObject, byLabel, plain] = r.stdout.trim().split(' ').map(Number);
    const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
    close(byObject, (Math.log(11) + 3 * Math.log(2)) / 4);
    close(byLabel, (Math.log(11) + Math.log(2)) / 2);
    close(plain, (Math.log(11) + Math.log(2)) / 2);
  },
);
