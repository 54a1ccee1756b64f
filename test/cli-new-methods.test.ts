import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cli, tinyUnetOnDisk } from './helpers/cli.js';

/** The explain command with shapley-cam and kernel-shap: flags reach the methods, bad values and the ONNX refusal are one line, exit 2. */

let dir = '';
let unet = '';
let image = '';

before(async () => {
  ({ dir, unet, image } = await tinyUnetOnDisk('sgc-new-methods-'));
});

const base = (model = unet, cls = 'ring') => ['explain', '-m', model, '-i', image, '--box', '2,2,9,9', '--class', cls, '--backend', 'cpu'];
let runs = 0;
function explain(...flags: string[]): Record<string, unknown> & { cam: number[]; weights: number[] | null } {
  const json = join(dir, `run${runs++}.json`);
  const r = cli(...base(), ...flags, '--json', json, '-o', join(dir, `run${runs}.png`));
  assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
  return JSON.parse(readFileSync(json, 'utf8'));
}
function refused(args: string[], pattern: RegExp): void {
  const out = join(dir, `bad${runs++}.png`);
  const r = cli(...args, '-o', out);
  assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(existsSync(out), false);
}

describe('explain --method shapley-cam | kernel-shap', () => {
  test('shapley-cam on logits of a ReLU U-Net: H·A = 0 a.e., so α equals seg-grad-cam’s', () => {
    const s = explain('--layer', 'bottleneck', '--method', 'shapley-cam');
    const g = explain('--layer', 'bottleneck');
    assert.equal(s.method, 'shapley-cam');
    (g.weights ?? []).forEach((v, k) => assert.ok(Math.abs(v - (s.weights ?? [])[k]) <= 1e-6 * Math.max(1, Math.abs(v))));
  });

  test('kernel-shap: a grid of 4 gives a map with at most 4 distinct values; --negative the other sign', () => {
    const flags = ['--method', 'kernel-shap', '--segmentation', 'grid', '--segments', '4', '--baseline', 'mean'];
    const pos = explain(...flags);
    const neg = explain(...flags, '--negative');
    assert.ok(new Set(pos.cam).size <= 4, `${new Set(pos.cam).size} values`);
    assert.ok(pos.cam.every((v, i) => v === 0 || neg.cam[i] === 0));
    assert.ok(pos.cam.some((v) => v > 0) || neg.cam.some((v) => v > 0));
  });

  test('bad values and the ONNX engine: one line, exit 2, nothing written', () => {
    refused([...base(), '--method', 'kernel-shap', '--segmentation', 'felzenszwalb'], /--segmentation/);
    refused([...base(), '--method', 'kernel-shap', '--segments', '0'], /--segments/);
    refused(
      [...base('fixtures/onnx/unet-small.onnx', '1'), '--method', 'shapley-cam'],
      /shapley-cam is not supported by this model: this is an ONNX model/,
    );
    // Before a max pooling: TF.js has no gradient of MaxPoolGrad, so no second derivative — a typed refusal naming it.
    refused([...base(), '--layer', 'enc1', '--method', 'shapley-cam'], /shapley-cam needs second derivatives.*MaxPoolGrad/);
  });
});
