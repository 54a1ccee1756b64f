import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cli, tinyUnetOnDisk } from './helpers/cli.js';

/** The explain command's flags for negative / contrastive maps, normalisation and the new methods' options. */

let dir = '';
let unet = '';
let image = '';

before(async () => {
  ({ dir, unet, image } = await tinyUnetOnDisk('sgc-method-flags-'));
});

const base = () => ['explain', '-m', unet, '-i', image, '--box', '2,2,9,9', '--class', 'ring', '--backend', 'cpu'];
let runs = 0;
/** Runs explain with the flags and --json; exit 0 expected; the parsed JSON. */
function explain(...flags: string[]): Record<string, unknown> & { cam: number[]; heatmap?: number[]; weights: number[] | null } {
  const k = runs++;
  const json = join(dir, `run${k}.json`);
  const r = cli(...base(), ...flags, '-o', join(dir, `run${k}.png`), '--json', json);
  assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
  return JSON.parse(readFileSync(json, 'utf8'));
}
/** A bad value: exit 2, one line naming the problem, nothing written. */
function refused(flags: string[], pattern: RegExp): void {
  const out = join(dir, `bad${runs++}.png`);
  const r = cli(...base(), ...flags, '-o', out);
  assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(existsSync(out), false);
}

describe('explain: negative, contrast and normalize flags', () => {
  test('--negative: the same α, and the positive and negative maps never both above 0 (ReLU(±Σ α A))', () => {
    const pos = explain('--layer', 'enc1');
    const neg = explain('--layer', 'enc1', '--negative');
    assert.equal(neg.negative, true);
    assert.equal(pos.negative, undefined);
    assert.deepEqual(neg.weights, pos.weights);
    assert.ok(neg.cam.some((v) => v > 0) && pos.cam.some((v) => v > 0), 'the check needs both signs');
    assert.ok(neg.cam.every((v, i) => v === 0 || pos.cam[i] === 0));
    refused(['--method', 'saliency', '--negative'], /saliency has no negative map/);
  });

  test('--contrast-class (name or index) and --contrast-weight: S = S_c − β S_c′; the JSON records c′ and β', () => {
    const ring = explain('--layer', 'enc1');
    const bar = explain('--layer', 'enc1', '--class', 'bar');
    const contrast = explain('--layer', 'enc1', '--contrast-class', 'bar', '--contrast-weight', '0.5');
    assert.equal(contrast.contrastClass, 2);
    assert.equal(contrast.contrastClassName, 'bar');
    assert.equal(contrast.contrastWeight, 0.5);
    const want = (ring.scoreValue as number) - 0.5 * (bar.scoreValue as number);
    assert.ok(Math.abs((contrast.scoreValue as number) - want) < 1e-4 * Math.max(1, Math.abs(want)), `${contrast.scoreValue} vs ${want}`);
    // Seg-Grad-CAM's α is linear in S: α(S_c − β S_c′) = α(S_c) − β α(S_c′).
    const w = contrast.weights ?? [];
    w.forEach((v, k) => assert.ok(Math.abs(v - ((ring.weights ?? [])[k] - 0.5 * (bar.weights ?? [])[k])) < 1e-5));
    const byIndex = explain('--layer', 'enc1', '--contrast-class', '2');
    assert.equal(byIndex.contrastWeight, 1);
    assert.equal(ring.contrastClass, undefined);
    refused(['--contrast-class', 'car'], /unknown class 'car'/);
    refused(['--contrast-class', 'ring'], /the explained class itself/);
    refused(['--contrast-class', 'bar', '--contrast-weight', 'x'], /--contrast-weight expects a number, got 'x'/);
    refused(['--contrast-weight', '2'], /--contrast-weight needs --contrast-class/);
  });

  test('--normalize minmax: (h − min h)/(1 − min h) of the max-normalised heatmap; the JSON records it', () => {
    // Grad-CAM++ at the bottleneck is above 0 everywhere on this image, so min-max differs from max.
    const byMax = explain('--method', 'grad-cam++', '--json-heatmap');
    const byMinMax = explain('--method', 'grad-cam++', '--json-heatmap', '--normalize', 'minmax');
    assert.equal(byMinMax.normalize, 'minmax');
    assert.equal(byMax.normalize, undefined);
    const h = byMax.heatmap ?? [];
    const lo = Math.min(...h);
    assert.ok(lo > 0, `the check needs a heatmap above 0 everywhere (min ${lo})`);
    (byMinMax.heatmap ?? []).forEach((v, i) => assert.ok(Math.abs(v - (h[i] - lo) / (1 - lo)) < 1e-5, `${i}: ${v}`));
    refused(['--normalize', 'sum'], /--normalize: unknown normalization 'sum'; expected max or minmax/);
  });
});

describe('explain: the new methods’ flags', () => {
  test('score-cam --variant pytorch-grad-cam', () => {
    const e = explain('--method', 'score-cam', '--variant', 'pytorch-grad-cam', '--layer', 'enc1');
    assert.equal(e.method, 'score-cam');
    assert.ok(e.cam.every(Number.isFinite));
    refused(['--method', 'score-cam', '--variant', 'torch'], /--variant expects one of increase, pytorch-grad-cam, got 'torch'/);
  });

  test('occlusion --window --stride: the map is over the input', () => {
    const e = explain('--method', 'occlusion', '--window', '4', '--stride', '4');
    assert.deepEqual(e.camShape, [16, 16]);
    // A 4x4 window with stride 4 tiles the input: the map is constant on each tile.
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) assert.equal(e.cam[y * 16 + x], e.cam[(y - (y % 4)) * 16 + (x - (x % 4))]);
    refused(['--method', 'occlusion', '--window', '0'], /--window expects an integer >= 1, got '0'/);
    refused(['--method', 'occlusion', '--stride', '1.5'], /--stride expects an integer >= 1/);
  });

  test('rise --samples --mask-size --keep-probability --seed: one seed gives one map, another seed another', () => {
    const flags = ['--method', 'rise', '--samples', '8', '--mask-size', '4', '--keep-probability', '0.6', '--batch-size', '4'];
    const a = explain(...flags, '--seed', '1');
    const b = explain(...flags, '--seed', '1');
    const c = explain(...flags, '--seed', '2');
    assert.deepEqual(a.cam, b.cam);
    assert.notDeepEqual(a.cam, c.cam);
    refused(['--method', 'rise', '--keep-probability', '0'], /--keep-probability expects a number in \(0, 1\], got '0'/);
  });

  test('kpca-cam --kernel --gamma, fem --sigmas, finer-cam --comparisons --finer-alpha', () => {
    for (const flags of [
      ['--method', 'kpca-cam', '--kernel', 'rbf', '--gamma', '0.5'],
      ['--method', 'fem', '--sigmas', '1'],
      ['--method', 'finer-cam', '--comparisons', '1', '--finer-alpha', '0.5'],
    ]) {
      const e = explain(...flags, '--layer', 'enc1');
      assert.equal(e.method, flags[1]);
      assert.ok(e.cam.every(Number.isFinite));
    }
    refused(['--method', 'kpca-cam', '--kernel', 'poly'], /--kernel expects one of sigmoid, rbf, linear, got 'poly'/);
    refused(['--method', 'kpca-cam', '--gamma', '0'], /--gamma expects a number > 0, got '0'/);
    refused(['--method', 'fem', '--sigmas', '-1'], /--sigmas expects a number >= 0, got '-1'/);
    refused(['--method', 'finer-cam', '--comparisons', '0'], /--comparisons expects an integer >= 1, got '0'/);
    refused(['--method', 'finer-cam', '--finer-alpha', 'abc'], /--finer-alpha expects a number, got 'abc'/);
  });
});
