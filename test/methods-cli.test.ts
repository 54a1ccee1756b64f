import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cli, tinyUnetOnDisk } from './helpers/cli.js';

let dir = '';
let unet = '';
let image = '';

before(async () => {
  ({ dir, unet, image } = await tinyUnetOnDisk('sgc-methods-cli-'));
});

const base = () => ['explain', '-m', unet, '-i', image, '--box', '2,2,9,9', '--class', 'ring', '--backend', 'cpu'];

describe('explain --method', () => {
  test('smoothgrad with --samples and --seed is reproducible; the JSON names the method and the input layer', () => {
    const runs = [1, 2].map((k) => {
      const out = join(dir, `sg${k}.png`);
      const json = join(dir, `sg${k}.json`);
      const r = cli(...base(), '--method', 'smoothgrad', '--samples', '4', '--sigma', '0.2', '--seed', '3', '-o', out, '--json', json);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(out));
      return JSON.parse(readFileSync(json, 'utf8'));
    });
    assert.equal(runs[0].method, 'smoothgrad');
    assert.equal(runs[0].layer.name, 'input');
    assert.deepEqual(runs[0].camShape, [16, 16]);
    assert.deepEqual(runs[0].cam, runs[1].cam);
  });

  test('integrated-gradients, score-cam, lrp and grid-saliency with their flags; --layers, --augment, --truncate', () => {
    const cases: string[][] = [
      ['--method', 'integrated-gradients', '--steps', '4', '--baseline', 'blurred'],
      ['--method', 'score-cam', '--max-channels', '2', '--batch-size', '2'],
      ['--method', 'lrp', '--lrp-rule', 'alpha-beta'],
      ['--method', 'grid-saliency', '--iterations', '3', '--mask-size', '4', '--lambda', '0.1'],
      ['--layers', 'enc1,bottleneck', '--augment', '--truncate'],
    ];
    for (const [i, flags] of cases.entries()) {
      const json = join(dir, `case${i}.json`);
      const r = cli(...base(), ...flags, '-o', join(dir, `case${i}.png`), '--json', json);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
      const result = JSON.parse(readFileSync(json, 'utf8'));
      assert.ok(result.cam.every((v: number) => Number.isFinite(v)));
    }
    assert.match(readFileSync(join(dir, 'case3.json'), 'utf8'), /"camShape":\[4,4\]/);
  });

  test('bad method flags are one-line usage errors', () => {
    for (const [flags, pattern] of [
      [['--method', 'nope'], /--method expects one of seg-grad-cam, .*lrp/],
      [['--method', 'smoothgrad', '--samples', '0'], /--samples expects an integer >= 1, got '0'/],
      [['--method', 'integrated-gradients', '--baseline', 'grey'], /--baseline expects black, blurred or a number, got 'grey'/],
      [['--method', 'lrp', '--lrp-rule', 'z'], /--lrp-rule expects one of epsilon, alpha-beta/],
    ] as const) {
      const out = join(dir, 'bad.png');
      const r = cli(...base(), ...flags, '-o', out);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(existsSync(out), false);
    }
  });
});
