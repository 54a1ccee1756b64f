import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { cli, tinyUnetOnDisk } from './helpers/cli.js';

/** The explain command's LRP first-layer flags and the FullGrad / guided methods. */

let dir = '';
let unet = '';
let image = '';
before(async () => {
  ({ dir, unet, image } = await tinyUnetOnDisk('sgc-lrp-guided-'));
});

const base = () => ['explain', '-m', unet, '-i', image, '--box', '2,2,9,9', '--class', 'ring', '--backend', 'cpu'];
let runs = 0;
function explain(...flags: string[]): { cam: number[]; method: string } {
  const json = join(dir, `run${runs++}.json`);
  const r = cli(...base(), ...flags, '-o', join(dir, `run${runs}.png`), '--json', json);
  assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
  return JSON.parse(readFileSync(json, 'utf8'));
}
function refused(flags: string[], pattern: RegExp): void {
  const out = join(dir, `bad${runs++}.png`);
  const r = cli(...base(), ...flags, '-o', out);
  assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(existsSync(out), false);
}

test('--lrp-first-layer z-box / z-plus change the LRP map; bad values exit 2 with one line', () => {
  const same = explain('--method', 'lrp');
  const box = explain('--method', 'lrp', '--lrp-first-layer', 'z-box');
  const plus = explain('--method', 'lrp', '--lrp-first-layer', 'z-plus', '--lrp-low', '0', '--lrp-high', '1');
  for (const [name, r] of [
    ['z-box', box],
    ['z-plus', plus],
  ] as const) {
    assert.equal(r.cam.length, same.cam.length);
    assert.ok(
      r.cam.some((v, i) => Math.abs(v - same.cam[i]) > 1e-6),
      `${name} differs from the ε-rule map`,
    );
  }
  refused(['--method', 'lrp', '--lrp-first-layer', 'z-minus'], /--lrp-first-layer/);
  refused(['--method', 'lrp', '--lrp-first-layer', 'z-box', '--lrp-low', '1', '--lrp-high', '0'], /low ≤ high/);
});

test('full-grad, guided-backprop and guided-grad-cam run from the CLI', () => {
  for (const method of ['full-grad', 'guided-backprop', 'guided-grad-cam']) {
    const r = explain('--method', method, '--layer', 'enc1');
    assert.ok(
      r.cam.some((v) => v > 0),
      `${method}: a non-zero map`,
    );
  }
});
