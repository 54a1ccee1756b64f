import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { saveModel } from './helpers/save-model.js';
import { tinyUnet } from './helpers/tiny-unet.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-cli-'));
let unet = '';
let badShape = '';
let image = '';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writePng(path: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number]) {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      png.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  writeFileSync(path, PNG.sync.write(png));
}

before(async () => {
  await tf.setBackend('cpu');
  unet = await saveModel(tinyUnet(16, 3, 5), join(dir, 'unet'), { classNames: ['background', 'ring', 'bar'] });
  // A model whose output is neither a class map nor a class vector: [1, 256, 3].
  const input = tf.input({ shape: [16, 16, 3] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.reshape({ targetShape: [256, 3] }).apply(conv) as tf.SymbolicTensor;
  badShape = await saveModel(tf.model({ inputs: input, outputs: out }), join(dir, 'bad'));
  image = join(dir, 'image.png');
  writePng(image, 32, 24, (x, y) => [(x * 8) % 256, (y * 10) % 256, ((x + y) * 5) % 256]);
});

/** A usage or input error: exit code 2, exactly one line naming the problem, no stack, no output file. */
function assertUsageError(r: ReturnType<typeof cli>, pattern: RegExp, out?: string) {
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  if (out) {
    assert.equal(existsSync(out), false, `${out} must not be written`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
      'no temporary file may be left',
    );
  }
}

describe('seg-grad-cam CLI', () => {
  test('explain writes a figure and JSON; exit code 0', () => {
    const out = join(dir, 'ok.png');
    const json = join(dir, 'ok.json');
    const r = cli(
      'explain',
      '-m',
      unet,
      '-i',
      image,
      '--box',
      '4,4,20,12',
      '--class',
      'ring',
      '--backend',
      'cpu',
      '-o',
      out,
      '--json',
      json,
    );
    assert.equal(r.code, 0, r.stderr);
    const png = PNG.sync.read(readFileSync(out));
    assert.ok(png.width > 32 && png.height >= 24);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(result.class, 1);
    assert.equal(result.className, 'ring');
    assert.equal(result.layer.name, 'bottleneck');
    assert.equal(result.weights.length, 6);
  });

  test('explains a PyTorch model exported to ONNX (ONNX Runtime)', () => {
    const out = join(dir, 'onnx.png');
    const r = cli('explain', '-m', 'fixtures/onnx/unet-small.onnx', '-i', image, '--pixel', '10,10', '--class', '2', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.layer.name, '/bottleneck/Relu_1_output_0');
    assert.equal(result.class, 2);
    assert.ok(existsSync(out));
  });

  test('layers marks the bottleneck', () => {
    const r = cli('layers', '-m', unet, '--backend', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bottleneck\s+Conv2D\s+\[1, 8, 8, 6\]\s+<- bottleneck/);
  });

  test('missing image file', () => {
    const out = join(dir, 'e1.png');
    assertUsageError(
      cli('explain', '-m', unet, '-i', join(dir, 'nope.png'), '--whole', '--backend', 'cpu', '-o', out),
      /image file not found: .*nope\.png/,
      out,
    );
  });

  test('missing model file', () => {
    const out = join(dir, 'e2.png');
    assertUsageError(
      cli('explain', '-m', join(dir, 'none.json'), '-i', image, '--whole', '--backend', 'cpu', '-o', out),
      /model file not found/,
      out,
    );
  });

  test('corrupt PNG', () => {
    const bad = join(dir, 'corrupt.png');
    writeFileSync(bad, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not really a png')]));
    const out = join(dir, 'e3.png');
    assertUsageError(cli('explain', '-m', unet, '-i', bad, '--whole', '--backend', 'cpu', '-o', out), /corrupt\.png/, out);
  });

  test('unknown layer lists the valid ones', () => {
    const out = join(dir, 'e4.png');
    assertUsageError(
      cli('explain', '-m', unet, '-i', image, '--whole', '--layer', 'nope', '--backend', 'cpu', '-o', out),
      /unknown layer 'nope'; valid layers: bottleneck, (input, )?enc1, pool1/,
      out,
    );
  });

  test('pixel outside the image', () => {
    const out = join(dir, 'e5.png');
    assertUsageError(
      cli('explain', '-m', unet, '-i', image, '--pixel', '32,3', '--backend', 'cpu', '-o', out),
      /\(32, 3\) is outside the 32x24 image/,
      out,
    );
  });

  test('class out of range', () => {
    const out = join(dir, 'e6.png');
    assertUsageError(
      cli('explain', '-m', unet, '-i', image, '--whole', '--class', '3', '--backend', 'cpu', '-o', out),
      /class 3 is out of range: the model has classes 0\.\.2/,
      out,
    );
  });

  test('empty mask', () => {
    const mask = join(dir, 'empty-mask.png');
    writePng(mask, 32, 24, () => [0, 0, 0]);
    const out = join(dir, 'e7.png');
    assertUsageError(cli('explain', '-m', unet, '-i', image, '--mask', mask, '--backend', 'cpu', '-o', out), /empty region/, out);
  });

  test('a model whose output is neither a class map nor a class vector', () => {
    const out = join(dir, 'e8.png');
    assertUsageError(
      cli('explain', '-m', badShape, '-i', image, '--whole', '--backend', 'cpu', '-o', out),
      /unsupported model output shape \[\?, 256, 3\]/,
      out,
    );
  });

  test('two regions at once, and an unknown flag', () => {
    assertUsageError(cli('explain', '-m', unet, '-i', image, '--whole', '--pixel', '1,1'), /choose one region/);
    assertUsageError(cli('explain', '--frobnicate'), /unknown option '--frobnicate'/);
  });
});
