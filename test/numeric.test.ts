/**
 * NaN and ±Inf from the model — a NaN weight, an input range it overflows on, a score that
 * overflows float32 — are a typed 'numeric' error naming where they appeared (the logits, S,
 * the gradient at a layer), in the library and the CLI (exit 2, one line), for explain and predict.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { Explainer } from '../src/explain.js';
import type { ForwardPass } from '../src/engine/contract.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { SegGradCamError } from '../src/errors.js';
import { checkedPass } from '../src/explain/numeric.js';
import { box, pixel, whole } from '../src/region/region.js';
import { pixelLinear } from './helpers/method-models.js';
import { saveModel } from './helpers/save-model.js';
import { randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

before(useCpu);

/** The tiny U-Net with one weight of its first convolution set to NaN. */
function nanUnet(): tf.LayersModel {
  const model = tinyUnet(16, 3, 5);
  const layer = model.getLayer('enc1');
  const [kernel, bias] = layer.getWeights();
  const values = kernel.dataSync().slice();
  values[0] = Number.NaN;
  const poisoned = tf.tensor(values, kernel.shape);
  layer.setWeights([poisoned, bias]);
  poisoned.dispose();
  return model;
}

const numeric = (where: RegExp) => (err: unknown) => {
  assert.ok(err instanceof SegGradCamError, `expected a SegGradCamError, got ${String(err)}`);
  assert.equal(err.code, 'numeric');
  assert.match(err.message, where);
  return true;
};

describe('library', () => {
  const image = randomImage(16, 16, 3);

  test('a NaN weight: explain and predict fail with "NaN at the logits", nothing leaks', async () => {
    const explainer = new Explainer(new LayersModelAdapter(nanUnet()));
    const before = tf.memory().numTensors;
    await assert.rejects(explainer.explain(image, { region: pixel(3, 3), classId: 1 }), numeric(/produced NaN at the logits/));
    await assert.rejects(explainer.explain(image, { region: pixel(3, 3) }), numeric(/produced NaN at the logits/));
    await assert.rejects(explainer.predict(image), numeric(/produced NaN at the logits/));
    assert.equal(tf.memory().numTensors, before, 'tensors');
    explainer.dispose();
  });

  test('an input range the model overflows on (±3e38): a numeric error at the logits', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(16, 3, 5)), { inputRange: [-3e38, 3e38] });
    await assert.rejects(explainer.explain(image, { region: whole(), classId: 1 }), numeric(/produced (NaN|Inf) at the logits/));
    await assert.rejects(explainer.predict(image), numeric(/produced (NaN|Inf) at the logits/));
    explainer.dispose();
  });

  test('finite logits whose sum over M overflows float32: "Inf at S"', async () => {
    // logits_0 = 1e38 everywhere (a bias; zero kernel): finite, but S over 4 pixels is 4e38 > 3.4e38.
    const model = pixelLinear(
      4,
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      [1e38, 0],
    );
    const explainer = new Explainer(new LayersModelAdapter(model));
    const img = randomImage(4, 4, 1);
    await assert.rejects(explainer.explain(img, { region: box(0, 0, 1, 1), classId: 0, layer: 'input' }), numeric(/produced Inf at S/));
    // One pixel: S = 1e38 is finite, and so is its gradient.
    const e = await explainer.explain(img, { region: pixel(0, 0), classId: 0, layer: 'input' });
    assert.equal(Math.fround(e.scoreValue), Math.fround(1e38));
    explainer.dispose();
  });

  test('a NaN gradient behind finite logits: "NaN at the gradient at layer X", the gradient freed', async () => {
    const a = tf.ones([1, 2, 2, 1]);
    const fake: ForwardPass = {
      output: a,
      activation: () => a,
      gradient: async () => ({
        activations: a.clone() as tf.Tensor4D,
        gradients: tf.fill([1, 2, 2, 1], Number.NaN) as tf.Tensor4D,
        score: 1,
      }),
      dispose: () => undefined,
    };
    const before = tf.memory().numTensors;
    await assert.rejects(
      checkedPass(fake).gradient('enc1', { weights: new Float32Array(4), on: 'logits', offset: 0 }),
      numeric(/produced NaN at the gradient at layer enc1/),
    );
    assert.equal(tf.memory().numTensors, before, 'tensors');
    a.dispose();
  });
});

describe('CLI: exit 2 and one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgc-numeric-'));
  let nanModel = '';
  let goodModel = '';
  const image = join(dir, 'image.png');

  before(async () => {
    nanModel = await saveModel(nanUnet(), join(dir, 'nan'));
    goodModel = await saveModel(tinyUnet(16, 3, 5), join(dir, 'good'));
    const png = new PNG({ width: 16, height: 16 });
    for (let i = 0; i < 16 * 16; i++) png.data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
    writeFileSync(image, PNG.sync.write(png));
  });

  function cli(...args: string[]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
      encoding: 'utf8',
      env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
    });
    return { code: r.status, stderr: r.stderr };
  }

  function assertNumeric(r: ReturnType<typeof cli>, where: RegExp, out: string) {
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], where);
    assert.equal(existsSync(out), false, `${out} must not be written`);
  }

  test('explain and predict with a NaN weight', () => {
    const out = join(dir, 'nan.png');
    const args = ['-m', nanModel, '-i', image, '--backend', 'cpu', '-o', out];
    assertNumeric(cli('explain', ...args, '--pixel', '3,3'), /^seg-grad-cam: the model produced NaN at the logits/, out);
    assertNumeric(cli('predict', ...args), /^seg-grad-cam: the model produced NaN at the logits/, out);
  });

  test('explain and predict with --input-range -3e38,3e38', () => {
    const out = join(dir, 'overflow.png');
    const args = ['-m', goodModel, '-i', image, '--backend', 'cpu', '--input-range', '-3e38,3e38', '-o', out];
    assertNumeric(cli('explain', ...args, '--whole', '--class', '1'), /^seg-grad-cam: the model produced (NaN|Inf) at the logits/, out);
    assertNumeric(cli('predict', ...args), /^seg-grad-cam: the model produced (NaN|Inf) at the logits/, out);
  });
});
