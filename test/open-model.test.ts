import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ortNode from 'onnxruntime-node';
import { SegGradCamError } from '../src/errors.js';
import { openModelSource as openBrowser } from '../src/engine/open.js';
import { openModel, openModelSource } from '../src/engine/open-node.js';
import type { OrtRuntime } from '../src/engine/onnx/adapter.js';
import { loadExplainer } from '../src/node.js';
import { pixel } from '../src/region/region.js';
import { readImageFile } from '../src/io/files.js';
import { maxAbs, maxAbsDiff, useCpu } from './helpers/setup.js';

const ONNX = 'fixtures/onnx/unet-small.onnx';
const UNET = 'models/unet-texture-mnist-biased/model.json';
let dir = '';

before(async () => {
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'seg-grad-cam-open-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SegGradCamError, `not a SegGradCamError: ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('a model.json path, or its folder, opens on TF.js with the metadata it carries', async () => {
  for (const source of [UNET, 'models/unet-texture-mnist-biased']) {
    const opened = await openModelSource(source);
    assert.equal(opened.adapter.kind, 'layers-model');
    assert.equal(opened.engine, 'tfjs layers-model');
    assert.equal(opened.metadata.classNames?.[4], 'digit 3');
    assert.deepEqual(opened.metadata.inputRange, [0, 1]);
    opened.adapter.dispose();
  }
  const graph = await openModel('models/selfie/selfie.json');
  assert.equal(graph.kind, 'graph-model');
  graph.dispose();
});

test('an .onnx file opens on ONNX Runtime, chosen by its bytes (the name does not matter)', async () => {
  const renamed = join(dir, 'model.bin');
  copyFileSync(ONNX, renamed);
  for (const source of [ONNX, renamed]) {
    const opened = await openModelSource(source);
    assert.equal(opened.adapter.kind, 'onnx');
    assert.equal(opened.engine, 'onnxruntime-node (cpu)');
    opened.adapter.dispose();
  }
});

test('ONNX bytes open in the browser entry on the runtime given (and name it)', async () => {
  const opened = await openBrowser(readFileSync(ONNX), { ort: ortNode as unknown as OrtRuntime });
  assert.equal(opened.adapter.kind, 'onnx');
  assert.equal(opened.engine, 'onnxruntime-node (cpu)');
  opened.adapter.dispose();
});

test('loadExplainer takes an .onnx file; onnxruntime-web in Node gives the numbers onnxruntime-node gives', async () => {
  const image = await readImageFile('fixtures/tiles/sample.png');
  const request = { region: pixel(10, 10), classId: 4, layer: '/enc.1/Relu_1_output_0' };
  const native = await loadExplainer(ONNX);
  const wasm = await loadExplainer(ONNX, { runtime: 'onnxruntime-web' });
  const a = await native.explain(image, request);
  const b = await wasm.explain(image, request);
  native.dispose();
  wasm.dispose();
  assert.ok(maxAbs(a.cam) > 0);
  assert.ok(Math.abs(a.scoreValue - b.scoreValue) <= 1e-5 * Math.abs(a.scoreValue));
  assert.ok(maxAbsDiff(a.weights!, b.weights!) <= 1e-5 * maxAbs(a.weights!));
  assert.ok(maxAbsDiff(a.cam, b.cam) <= 1e-5 * maxAbs(a.cam));
});

test('what is not a model is refused with a typed error naming it', async () => {
  await rejects(openModel(join(dir, 'missing.onnx')), 'file', /model file not found: .*missing\.onnx/);
  await rejects(openModel('fixtures/tiles/sample.png'), 'model', /sample\.png is neither an ONNX model nor a TF\.js model\.json/);
  await rejects(openModel(new Uint8Array(0)), 'model', /is empty/);
  await rejects(openModel(new TextEncoder().encode(' {"modelTopology": {}}')), 'model', /open a model\.json by its path or URL/);
  await rejects(openModel(new Uint8Array([1, 2, 3, 4])), 'model', /neither an ONNX model nor a TF\.js model\.json/);
  // ir_version's tag but not a ModelProto: the ONNX parse says so.
  await rejects(openModel(new Uint8Array([0x08, 0x07, 0xff, 0xff, 0xff])), 'model', /not an ONNX model/);
});
