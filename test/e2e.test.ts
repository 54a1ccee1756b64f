/**
 * End-to-end tests of the explorer (web/) in a real browser: Debian's chromium driven by
 * playwright-core, headless, against the built app served on 127.0.0.1. Skipped with a message
 * when chromium is missing, unless CI is set (then they must run).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { openExplainer, openImage } from '../src/cli/session.js';
import { encodePng } from '../src/io/codec.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { loadOnnxExplainer } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import type { Catalog } from '../web/bundled.js';
import {
  buildWeb,
  canvasDigest,
  canvasGeometry,
  chromiumMissing,
  clickPixel,
  dragPixels,
  hookValue,
  lastHeatmap,
  launchBrowser,
  nextAnswer,
  readCatalog,
  waitReady,
} from '../web/e2e-harness.js';
import { serve } from '../web/serve.js';
import { saveModel } from './helpers/save-model.js';
import { maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

const missing = chromiumMissing();
if (missing && isCi()) throw new Error(`the end-to-end tests must run in CI: ${missing}`);
// Each test carries the skip (a skipped describe would hide its tests: they must show as skipped, with the reason).
const skip = missing ? `end-to-end tests skipped: ${missing}` : false;

/** CI=true (or any value but '', 0 and false) says the tests run in CI. */
function isCi(): boolean {
  const ci = (process.env.CI ?? '').trim().toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

const T = { timeout: 180_000, skip };
/** Poll by timer, not by animation frame (a page in the background gets no frames). */
const POLL = { polling: 50, timeout: 120_000 };

let browser: Browser;
let context: BrowserContext;
let server: Awaited<ReturnType<typeof serve>>;
let extra: string;
let catalog: Catalog;
/** The page on the default model, shared by the tests that use it in turn. */
let page: Page;
/** The page on the bundled ONNX model, shared by the ONNX tests. */
let onnxPage: Page;
const pageErrors: string[] = [];

/** A U-Net small enough to explain at every layer in a moment, and models that must be refused. */
async function writeTestModels(dir: string): Promise<void> {
  await useCpu();
  const tiny = tinyUnet(32, 4, 3);
  await saveModel(tiny, join(dir, 'tiny'), { classNames: ['background', 'round', 'square', 'line'] });
  tiny.dispose();
  writeFileSync(join(dir, 'tiny.png'), encodePng(randomImage(32, 32, 5)));

  // No spatial output: flatten → dense, nothing to explain.
  const input = tf.input({ shape: [8, 8, 3] });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
  const flatModel = tf.model({ inputs: input, outputs: out });
  await saveModel(flatModel, join(dir, 'flat'));
  flatModel.dispose();

  // The tiny U-Net's model.json with weights that are one float short.
  mkdirSync(join(dir, 'short'), { recursive: true });
  writeFileSync(join(dir, 'short', 'model.json'), readFileSync(join(dir, 'tiny', 'model.json')));
  const weights = readFileSync(join(dir, 'tiny', 'weights.bin'));
  writeFileSync(join(dir, 'short', 'weights.bin'), weights.subarray(0, weights.length - 4));

  writeFileSync(join(dir, 'erf.onnx'), erfModel());

  // The tiny U-Net again, with a labels file beside its model.json (the page must find it).
  mkdirSync(join(dir, 'tiny-named'), { recursive: true });
  for (const name of ['model.json', 'weights.bin']) writeFileSync(join(dir, 'tiny-named', name), readFileSync(join(dir, 'tiny', name)));
  writeFileSync(join(dir, 'tiny-named', 'labels.txt'), 'sea\nsand\nrock\nweed\n');
}

/**
 * An ONNX model with an op that has no gradient on the way from its first layers to the logits:
 * Conv → Relu → MaxPool → Cos ('the_erf') → Conv. ONNX Runtime runs it; the gradient at 'relu'
 * cannot be compiled, the one at 'erf' (after the op) can.
 */
function erfModel(): Uint8Array {
  const model = emptyModel(13);
  const b = new GraphBuilder(model.graph);
  model.graph.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 16, 16]));
  const w1 = b.floats(
    'w1',
    [4, 3, 3, 3],
    Array.from({ length: 108 }, (_, i) => Math.sin(i * 1.7) * 0.5),
  );
  const relu = b.op('Relu', [b.op('Conv', ['input', w1], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } })]);
  const pooled = b.op('MaxPool', [relu], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  const erf = b.node('Cos', [pooled], {}, [b.fresh('erf')], 'the_erf')[0]; // an op without a gradient record
  const w2 = b.floats(
    'w2',
    [3, 4, 1, 1],
    Array.from({ length: 12 }, (_, i) => Math.cos(i * 2.3)),
  );
  b.node('Conv', [erf, w2], { kernel_shape: { ints: [1, 1] } }, [b.claim('output')]);
  model.graph.output.push(valueInfo('output', DataType.FLOAT, [1, 3, 8, 8]));
  return encodeModel(model);
}

async function newPage(query = ''): Promise<Page> {
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(e.message));
  await p.goto(server.url + query);
  await waitReady(p);
  return p;
}

const useTool = (p: Page, tool: string) => p.click(`#tools label:has(input[value="${tool}"])`);

/** A repo path for a bundled file's URL in the app (samples/<dir>/x.png ← fixtures/<dir>/x.png). */
const repoPath = (url: string) => (url.startsWith('samples/') ? `fixtures/${url.slice('samples/'.length)}` : url);

describe('the explorer in headless Chromium', () => {
  before(async () => {
    if (skip) return;
    extra = mkdtempSync(join(tmpdir(), 'seg-grad-cam-e2e-'));
    await Promise.all([buildWeb(), writeTestModels(extra)]);
    catalog = readCatalog();
    server = await serve({ mounts: { '/extra/': extra } });
    browser = await launchBrowser();
    // One context: the backend timed on the first page is remembered for the next ones.
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (extra) rmSync(extra, { recursive: true, force: true });
  });

  test('the page loads the default model, chooses a backend by timing, and shows a prediction', T, async () => {
    assert.ok(catalog.models.length > 0, 'the build bundles at least one model');
    page = await newPage();
    const state = await hookValue<{ model: string; layers: unknown[] }>(page, 'h.state()');
    assert.equal(state.model, catalog.models[0].id);
    assert.ok(state.layers.length > 0);
    const backend = await hookValue<{ backend: string; probes: Array<{ name: string; ms?: number }> }>(page, 'h.backend');
    assert.match(backend.backend, /^(wasm|webgl|webgpu)$/);
    assert.ok(
      backend.probes.some((p) => p.name === 'wasm' && typeof p.ms === 'number'),
      'wasm was timed',
    );
    assert.match((await page.textContent('#backend')) ?? '', new RegExp(backend.backend));
    // The prediction panel holds a label map with at least one class in the legend.
    const pred = await canvasDigest(page, '#view-prediction');
    assert.ok(pred.width > 0 && pred.sum > 0);
    assert.ok((await page.locator('#legend button').count()) >= 1);
    assert.match((await page.textContent('#timing')) ?? '', /forward pass \d+ ms/);
  });

  test('a click on a pixel draws a heatmap whose pixels differ from a click elsewhere', T, async () => {
    const { width, height } = await canvasGeometry(page, '#view-image');
    const before = await canvasDigest(page, '#view-overlay');
    assert.equal(
      await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * 0.55), Math.floor(height * 0.4))),
      'answer',
    );
    const first = await canvasDigest(page, '#view-overlay');
    const heat1 = await lastHeatmap(page);
    assert.notDeepEqual(first, before, 'the overlay changed');
    assert.equal(
      await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * 0.1), Math.floor(height * 0.9))),
      'answer',
    );
    const second = await canvasDigest(page, '#view-overlay');
    const heat2 = await lastHeatmap(page);
    assert.notDeepEqual(second, first, 'a click elsewhere draws another heatmap');
    assert.ok(maxAbsDiff(heat1, heat2) > 0.05);
    const timings = await hookValue<Array<{ cached: boolean }>>(page, 'h.timings');
    assert.ok(
      timings.every((t) => t.cached),
      'each answer reused the one forward pass',
    );
    assert.match((await page.textContent('#timing')) ?? '', /answer in \d+ ms on \w+/);
    // Hovering the heatmap shows its value there.
    const g = await canvasGeometry(page, '#view-overlay');
    await page.mouse.move(g.left + g.width * g.scaleX * 0.5, g.top + g.height * g.scaleY * 0.5);
    await page.waitForFunction(() => /heatmap \d\.\d{3}/.test(document.getElementById('hover-readout')?.textContent ?? ''), null, POLL);
  });

  test('a box drag and the class-region form work', T, async () => {
    const { width, height } = await canvasGeometry(page, '#view-image');
    await useTool(page, 'box');
    const x0 = Math.floor(width * 0.3);
    const y0 = Math.floor(height * 0.3);
    const x1 = Math.floor(width * 0.6);
    const y1 = Math.floor(height * 0.7);
    assert.equal(await nextAnswer(page, () => dragPixels(page, '#view-image', [x0, y0], [x1, y1])), 'answer');
    const box = await hookValue<{ kind: string; x0: number; y0: number; x1: number; y1: number }>(page, 'h.lastRegion');
    assert.deepEqual(box, { kind: 'box', x0, y0, x1, y1 });
    const inBox = await hookValue<number>(page, 'h.lastExplanation.regionMask.reduce((a, b) => a + b, 0)');
    assert.ok(inBox > 1, 'the box covers several output pixels');

    // The class form: every pixel predicted as the legend's most frequent class.
    const cls = Number(await page.locator('#legend button').first().getAttribute('data-class'));
    // Choosing a class re-asks the box with it; then the form asks for all its pixels.
    assert.equal(await nextAnswer(page, () => page.selectOption('#class-select', String(cls))), 'answer');
    assert.equal(await hookValue<number>(page, 'h.lastExplanation.classIndex'), cls);
    assert.equal(await nextAnswer(page, () => page.click('#class-region')), 'answer');
    assert.equal(await hookValue<string>(page, 'h.lastRegion.kind'), 'class');
    const e = await hookValue<{ classIndex: number; m: number; predicted: number }>(
      page,
      '({ classIndex: h.lastExplanation.classIndex, m: h.lastExplanation.regionMask.reduce((a, b) => a + b, 0), predicted: h.lastExplanation.prediction.labels.filter((c) => c === h.lastExplanation.classIndex).length })',
    );
    assert.equal(e.classIndex, cls);
    assert.equal(e.m, e.predicted, 'M is exactly the pixels predicted as the class');
    assert.equal(await nextAnswer(page, () => page.selectOption('#class-select', 'auto')), 'answer');
    await useTool(page, 'pixel');
  });

  test('the URL reproduces the view, and the exports hold the heatmap and α', T, async () => {
    const { width, height } = await canvasGeometry(page, '#view-image');
    // A pixel at a non-default layer: the link must carry the layer too.
    const layers = await hookValue<Array<{ name: string }>>(page, 'h.state().layers');
    const layer = layers[Math.floor(layers.length / 3)].name;
    assert.equal(await nextAnswer(page, () => page.selectOption('#layer-select', layer)), 'answer');
    assert.equal(
      await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * 0.45), Math.floor(height * 0.55))),
      'answer',
    );
    const url = page.url();
    assert.match(url, /region=pixel/);
    assert.match(url, new RegExp(`layer=${encodeURIComponent(layer)}`));
    const heat = await lastHeatmap(page);

    const copy = await newPage(url.slice(server.url.length));
    await copy.waitForFunction(() => (window as unknown as { __segGradCam: { answers: number } }).__segGradCam.answers > 0, null, POLL);
    const copied = await hookValue<{ layer: string; region: unknown }>(copy, '({ layer: h.state().layer, region: h.lastRegion })');
    assert.equal(copied.layer, layer);
    assert.deepEqual(copied.region, await hookValue(page, 'h.lastRegion'));
    assert.ok(maxAbsDiff(await lastHeatmap(copy), heat) < 1e-6, 'the link gives the same heatmap');
    assert.equal((await hookValue<{ reason: string }>(copy, 'h.backend')).reason, 'timed earlier in this browser');
    await copy.close();
    await page.bringToFront();

    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
    const data = JSON.parse(readFileSync(await json.path(), 'utf8')) as {
      heatmap: number[];
      weights: number[] | null;
      imageSize: number[];
      layer: { name: string; outputShape: number[] };
    };
    assert.equal(data.heatmap.length, data.imageSize[0] * data.imageSize[1]);
    assert.equal(data.layer.name, layer);
    assert.equal(data.weights?.length, data.layer.outputShape[3], 'one α per channel');
    const [png] = await Promise.all([page.waitForEvent('download'), page.click('#export-png')]);
    assert.deepEqual([...readFileSync(await png.path()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });

  test('α of two regions side by side with their cosine similarity', T, async () => {
    const { width, height } = await canvasGeometry(page, '#view-image');
    await page.click('#pin-a');
    assert.equal(
      await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * 0.2), Math.floor(height * 0.2))),
      'answer',
    );
    const cos = Number(await page.getAttribute('#alpha-text', 'data-cosine'));
    assert.ok(Number.isFinite(cos) && cos >= -1 - 1e-6 && cos <= 1 + 1e-6, `cosine ${cos}`);
    assert.equal(await page.isVisible('#alpha-chart'), true);
  });

  test('bad input shows a clear message and the page keeps working', T, async () => {
    const { width, height } = await canvasGeometry(page, '#view-image');
    const model = await hookValue<string>(page, 'h.state().model');
    const expectError = async (action: () => Promise<unknown>, pattern: RegExp) => {
      assert.equal(await nextAnswer(page, action), 'error');
      assert.equal(await page.isVisible('#error'), true);
      assert.match((await page.textContent('#error-text')) ?? '', pattern);
    };
    await expectError(
      () =>
        page.setInputFiles('#image-file', { name: 'corrupt.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG at all') }),
      /cannot decode corrupt\.png/,
    );
    const file = (dir: string, name: string) => ({
      name,
      mimeType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      buffer: readFileSync(join(extra, dir, name)),
    });
    await expectError(
      () => page.setInputFiles('#model-files', [file('flat', 'model.json'), file('flat', 'weights.bin')]),
      /no layer has a spatial/,
    );
    await expectError(
      () => page.setInputFiles('#model-files', [file('short', 'model.json'), file('short', 'weights.bin')]),
      /weights do not match model\.json/,
    );
    await expectError(() => page.setInputFiles('#model-files', [file('tiny', 'model.json')]), /needs the weight file weights\.bin/);
    await expectError(
      () =>
        page.setInputFiles('#labels-file', {
          name: 'labels.txt',
          mimeType: 'text/plain',
          buffer: Buffer.from('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n'),
        }),
      /lists 13 classes but the model has/,
    );
    // The previous model and image are still there, and the next click is answered.
    assert.equal(await hookValue<string>(page, 'h.state().model'), model);
    assert.equal(
      await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * 0.5), Math.floor(height * 0.5))),
      'answer',
    );
    assert.equal(await page.isVisible('#error'), false);
    assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
  });

  test(
    "a .onnx model on onnxruntime-web: the bundled one opened from the list; a pixel's heatmap equals the library's on onnxruntime-node within 1e-4; regions, grid and α",
    T,
    async () => {
      const onnx = catalog.models.find((m) => m.format === 'onnx');
      assert.ok(onnx, 'the build bundles the ONNX U-Net');
      const p = (onnxPage = await newPage());
      const predictions = await hookValue<number>(p, 'h.predictions');
      await p.selectOption('#model-select', onnx.id);
      await p.waitForFunction(
        (n) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > n,
        predictions,
        POLL,
      );
      const state = await hookValue<{ model: string; image: string; engine: string; layers: Array<{ name: string; bottleneck: boolean }> }>(
        p,
        'h.state()',
      );
      assert.equal(state.model, onnx.id);
      assert.equal(state.image, onnx.samples[0]);
      // The server's COOP/COEP headers isolate the page, so ONNX Runtime gets one thread per core (≤ 4).
      assert.equal(await p.evaluate(() => crossOriginIsolated), true, 'the explorer page is cross-origin isolated');
      const cores = Math.min(4, await p.evaluate(() => navigator.hardwareConcurrency));
      assert.equal(state.engine, `onnxruntime-web (wasm), ${cores} thread${cores === 1 ? '' : 's'}`);
      assert.match((await p.textContent('#backend')) ?? '', /backend: onnxruntime-web \(wasm\)/);
      assert.match(
        (await p.textContent('#model-summary')) ?? '',
        /onnx model on onnxruntime-web \(wasm\), \d threads?, input 64×32×3, output 64×32×8, 8 classes/,
      );
      assert.equal(state.layers.filter((l) => l.bottleneck).length, 1, 'one layer is marked as the bottleneck');
      assert.match((await p.textContent('#layer-select option:checked')) ?? '', /★/);
      assert.ok((await canvasDigest(p, '#view-prediction')).sum > 0, 'the prediction is drawn');

      // One pixel at the bottleneck, against the library in Node on onnxruntime-node (tf on cpu around it).
      const { width, height } = await canvasGeometry(p, '#view-image');
      const x = Math.floor(width * 0.45);
      const y = Math.floor(height * 0.4);
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', x, y)), 'answer');
      const got = await hookValue<{ layer: string; cls: number }>(
        p,
        '({ layer: h.lastExplanation.layer.name, cls: h.lastExplanation.classIndex })',
      );
      const heat = await lastHeatmap(p);
      assert.match((await p.textContent('#timing')) ?? '', /answer in \d+ ms on onnxruntime-web \(wasm\)/);
      await useCpu();
      const explainer = await loadOnnxExplainer(onnx.url);
      try {
        const { image } = await openImage(repoPath(onnx.samples[0]));
        assert.deepEqual([image.width, image.height], [width, height]);
        const want = await explainer.explain(image, { region: { kind: 'pixel', x, y }, layer: explainer.bottleneck });
        assert.equal(got.layer, want.layer.name);
        assert.equal(got.cls, want.classIndex);
        assert.equal(heat.length, want.heatmap.length);
        assert.ok(!want.empty, 'the reference heatmap is not all zero');
        const diff = maxAbsDiff(heat, want.heatmap);
        assert.ok(diff <= 1e-4, `max |page − Node| = ${diff}`);
      } finally {
        explainer.dispose();
      }

      // The other region forms, the layer grid and α go through the same Explainer.
      await useTool(p, 'box');
      assert.equal(
        await nextAnswer(p, () =>
          dragPixels(
            p,
            '#view-image',
            [Math.floor(width * 0.2), Math.floor(height * 0.2)],
            [Math.floor(width * 0.5), Math.floor(height * 0.6)],
          ),
        ),
        'answer',
      );
      assert.equal(await hookValue<string>(p, 'h.lastRegion.kind'), 'box');
      await useTool(p, 'object');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', x, y)), 'answer');
      assert.equal(await hookValue<string>(p, 'h.lastRegion.kind'), 'object');
      assert.equal(await nextAnswer(p, () => p.click('#class-region')), 'answer');
      const e = await hookValue<{ m: number; predicted: number }>(
        p,
        '({ m: h.lastExplanation.regionMask.reduce((a, b) => a + b, 0), predicted: h.lastExplanation.prediction.labels.filter((c) => c === h.lastExplanation.classIndex).length })',
      );
      assert.equal(e.m, e.predicted, 'M is exactly the pixels predicted as the class');
      assert.equal(await nextAnswer(p, () => p.click('#whole-image')), 'answer');
      assert.equal(await hookValue<number>(p, 'h.lastExplanation.regionMask.reduce((a, b) => a + b, 0)'), 64 * 32);
      await useTool(p, 'pixel');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', x, y)), 'answer');

      await p.check('#layer-grid-filter');
      await p.click('#layer-grid-run');
      const cells = await p.locator('#layer-grid .cell').count();
      assert.ok(cells >= 4, `${cells} cells`);
      await p.waitForFunction(
        (n) => (window as unknown as { __segGradCam: { gridDone: number } }).__segGradCam.gridDone === n,
        cells,
        POLL,
      );
      const drawn = await p.$$eval('#layer-grid .cell canvas', (cs) => cs.map((c) => (c as HTMLCanvasElement).width));
      assert.ok(
        drawn.every((w) => w > 1),
        'every cell holds a heatmap',
      );

      await p.click('#pin-a');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.8), Math.floor(height * 0.8))), 'answer');
      const cos = Number(await p.getAttribute('#alpha-text', 'data-cosine'));
      assert.ok(Number.isFinite(cos) && cos >= -1 - 1e-6 && cos <= 1 + 1e-6, `cosine ${cos}`);
    },
  );

  test(
    'a corrupt .onnx file and an op without a gradient give clear messages, and the page keeps working; .onnx by URL and by drop',
    T,
    async () => {
      const p = onnxPage;
      const { width, height } = await canvasGeometry(p, '#view-image');
      const model = await hookValue<string>(p, 'h.state().model');
      const expectError = async (action: () => Promise<unknown>, pattern: RegExp) => {
        assert.equal(await nextAnswer(p, action), 'error');
        assert.equal(await p.isVisible('#error'), true);
        const text = (await p.textContent('#error-text')) ?? '';
        assert.match(text, pattern);
        assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
      };
      // A truncated export: the model stays as it was, and the next click is answered.
      const full = readFileSync(join('fixtures', 'onnx', 'unet-small.onnx'));
      await expectError(
        () =>
          p.setInputFiles('#model-files', {
            name: 'corrupt.onnx',
            mimeType: 'application/octet-stream',
            buffer: full.subarray(0, full.length - 3000),
          }),
        /^corrupt\.onnx: not an ONNX model/,
      );
      assert.equal(await hookValue<string>(p, 'h.state().model'), model);
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.3), Math.floor(height * 0.3))), 'answer');
      assert.equal(await p.isVisible('#error'), false);

      // A model (by URL) that loads and runs, but whose gradient at 'relu' would cross Cos (no gradient record): the op and its node are named.
      const predicted = async (action: () => Promise<unknown>) => {
        const n = await hookValue<number>(p, 'h.predictions');
        await action();
        await p.waitForFunction(
          (k) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > k,
          n,
          POLL,
        );
      };
      await predicted(async () => {
        await p.fill('#model-url', `${server.url}extra/erf.onnx`);
        await p.click('#model-url-form button[type="submit"]');
      });
      assert.equal(await hookValue<string>(p, 'h.state().model'), `url:${server.url}extra/erf.onnx`);
      await p.selectOption('#layer-select', 'relu');
      await expectError(() => clickPixel(p, '#view-image', 10, 5), /cannot differentiate through op 'Cos' \(node 'the_erf'\)/);
      // After the op the gradient exists: the same click at that layer is answered.
      await p.selectOption('#layer-select', 'erf');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', 10, 5)), 'answer');
      assert.equal(await hookValue<string>(p, 'h.lastExplanation.layer.name'), 'erf');

      // A .onnx file dropped on the page opens like a chosen one.
      await predicted(() =>
        p.evaluate(
          (bytes) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'dropped.onnx'));
            window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          },
          [...full],
        ),
      );
      assert.equal(await hookValue<string>(p, 'h.state().model'), 'dropped.onnx');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.6), Math.floor(height * 0.5))), 'answer');
      assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
      await p.close();
    },
  );

  test(
    'a model by URL: the layer grid renders one heatmap per layer; shift-click, brush, object, whole image; labels, drop, paste',
    T,
    async () => {
      const p = await newPage('?model=url:/extra/tiny/model.json&image=url:/extra/tiny.png&region=pixel:5,7');
      await p.waitForFunction(() => (window as unknown as { __segGradCam: { answers: number } }).__segGradCam.answers > 0, null, POLL);
      const layers = await hookValue<Array<{ name: string; bottleneck: boolean }>>(p, 'h.state().layers');
      assert.ok(layers.length >= 5);
      assert.equal(layers.filter((l) => l.bottleneck).length, 1, 'one layer is marked as the bottleneck');
      assert.match((await p.textContent('#layer-select option:checked')) ?? '', /★/);

      await p.click('#layer-grid-run');
      await p.waitForFunction(
        (n) => (window as unknown as { __segGradCam: { gridDone: number } }).__segGradCam.gridDone === n,
        layers.length,
        POLL,
      );
      assert.equal(await p.locator('#layer-grid .cell').count(), layers.length);
      const drawn = await p.$$eval('#layer-grid .cell canvas', (cs) => cs.map((c) => (c as HTMLCanvasElement).width));
      assert.ok(
        drawn.every((w) => w > 1),
        'every cell holds a heatmap',
      );
      const names = await p.$$eval('#layer-grid .cell .name', (ns) => ns.map((n) => n.textContent));
      assert.deepEqual(
        names,
        layers.map((l) => l.name),
      );
      assert.equal(await p.locator('#layer-grid .cell.bottleneck').count(), 1);
      // A cell opens its layer without asking the worker again.
      const answers = await hookValue<number>(p, 'h.answers');
      await p.click(`#layer-grid .cell[data-layer="${layers[0].name}"]`);
      assert.equal(await hookValue<string>(p, 'h.state().layer'), layers[0].name);
      assert.equal(await hookValue<number>(p, 'h.answers'), answers);

      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', 20, 20, ['Shift'])), 'answer');
      assert.deepEqual(await hookValue(p, 'h.lastRegion'), {
        kind: 'pixels',
        points: [
          [5, 7],
          [20, 20],
        ],
      });
      await useTool(p, 'brush');
      assert.equal(await nextAnswer(p, () => dragPixels(p, '#view-image', [4, 4], [14, 10])), 'answer');
      const brushed = await hookValue<{ kind: string; painted: number }>(
        p,
        '({ kind: h.lastRegion.kind, painted: h.lastRegion.mask.reduce((a, b) => a + b, 0) })',
      );
      assert.equal(brushed.kind, 'mask');
      assert.ok(brushed.painted > 20);
      await useTool(p, 'object');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', 16, 16)), 'answer');
      assert.deepEqual(await hookValue(p, 'h.lastRegion'), { kind: 'object', x: 16, y: 16 });
      assert.equal(await nextAnswer(p, () => p.click('#whole-image')), 'answer');
      assert.equal(await hookValue<number>(p, 'h.lastExplanation.regionMask.reduce((a, b) => a + b, 0)'), 32 * 32);

      // A labels file with colours renames the classes in the legend.
      await p.setInputFiles('#labels-file', {
        name: 'labels.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('sea #0000ff\nsand #ffcc00\nrock\nweed #00ff00\n'),
      });
      await p.waitForFunction(() => /sea|sand|rock|weed/.test(document.getElementById('legend')?.textContent ?? ''), null, POLL);
      assert.match((await p.textContent('#class-select')) ?? '', /0 · sea.*1 · sand.*2 · rock.*3 · weed/s);

      // An image dropped on the page, then one pasted: each is predicted and can be asked about.
      const png = (seed: number) => [...encodePng(randomImage(40, 24, seed))];
      const predictions = await hookValue<number>(p, 'h.predictions');
      await p.evaluate((bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
        window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, png(8));
      await p.waitForFunction(
        (n) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > n,
        predictions,
        POLL,
      );
      assert.equal(await hookValue<string>(p, 'h.state().image'), 'dropped.png');
      await p.evaluate((bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
        window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, png(9));
      await p.waitForFunction(
        (n) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > n + 1,
        predictions,
        POLL,
      );
      assert.equal(await hookValue<string>(p, 'h.state().image'), 'pasted image');
      await useTool(p, 'pixel');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', 39, 23)), 'answer');
      assert.equal(await hookValue<number>(p, 'h.lastExplanation.width'), 40);
      await p.close();
    },
  );

  test("the page's heatmap for a pixel equals the CLI's (same model, image, layer, pixel; cpu in Node) within 1e-4", T, async () => {
    for (const model of catalog.models) {
      const sample = model.samples[0];
      const { explainer } = await openExplainer({ model: model.url, backend: 'cpu' });
      const { image } = await openImage(repoPath(sample));
      const x = Math.floor(image.width * 0.45);
      const y = Math.floor(image.height * 0.4);
      const layers = explainer.layers();
      for (const layer of [explainer.bottleneck, layers[Math.floor(layers.length * 0.75)].name]) {
        const q = new URLSearchParams({ model: model.id, image: sample, layer, region: `pixel:${x},${y}` });
        const p = await newPage(`?${q}`);
        await p.waitForFunction(
          () => {
            const h = (window as unknown as { __segGradCam: { answers: number; errors: number } }).__segGradCam;
            return h.answers > 0 || h.errors > 0;
          },
          null,
          POLL,
        );
        const got = await hookValue<{ layer: string; error: string | null; cls: number }>(
          p,
          '({ layer: h.lastExplanation?.layer.name, error: h.lastError, cls: h.lastExplanation?.classIndex })',
        );
        assert.equal(got.error, null);
        const heat = await lastHeatmap(p);
        await p.close();
        const want = await explainer.explain(image, { region: { kind: 'pixel', x, y }, layer });
        assert.equal(got.layer, want.layer.name);
        assert.equal(got.cls, want.classIndex);
        assert.equal(heat.length, want.heatmap.length);
        const diff = maxAbsDiff(heat, want.heatmap);
        assert.ok(diff < 1e-4, `${model.id} at ${layer}: max |page − CLI| = ${diff}`);
      }
      explainer.dispose();
    }
  });

  test(
    'a long method shows its passes and can be cancelled; a new question supersedes it; the timing line counts passes; no tensor leaks',
    T,
    async () => {
      const p = await newPage();
      const { width, height } = await canvasGeometry(p, '#view-image');
      const x = Math.floor(width * 0.5);
      const y = Math.floor(height * 0.5);
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', x, y)), 'answer');
      const heat = await lastHeatmap(p);
      const tensors = await hookValue<number>(p, 'h.lastExplanation.tensors');
      // Seg-Grad-CAM: one backward pass on the cached forward pass.
      assert.match((await p.textContent('#timing')) ?? '', /: 0 forward passes and 1 backward pass after the cached forward pass/);

      // SmoothGrad runs 25 noisy copies: 25 forward and 25 backward passes, said so.
      assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', 'smoothgrad')), 'answer');
      assert.match((await p.textContent('#timing')) ?? '', /: 25 forward passes and 25 backward passes after the cached forward pass/);
      assert.equal(await hookValue<number>(p, 'h.lastExplanation.tensors'), tensors, 'no tensor left behind');

      // Grid saliency (100 iterations): the progress bar counts, the old heatmap is dimmed, Cancel stops it.
      assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', 'seg-grad-cam')), 'answer');
      await p.selectOption('#method-select', 'grid-saliency');
      await p.waitForFunction(() => /^\d+ of 102 passes/.test(document.getElementById('ask-progress-text')?.textContent ?? ''), null, POLL);
      assert.equal(await p.isVisible('#overlay-busy'), true);
      assert.match((await p.textContent('#overlay-busy')) ?? '', /computing/);
      assert.equal(await p.getAttribute('#panel-overlay', 'class'), 'panel stale');
      await p.waitForFunction(() => Number((document.getElementById('ask-progress') as HTMLProgressElement).value) > 0, null, POLL);
      const t0 = Date.now();
      await p.click('#cancel');
      await p.waitForFunction(
        () => (window as unknown as { __segGradCam: { cancelled: number } }).__segGradCam.cancelled === 1,
        null,
        POLL,
      );
      const cancelMs = Date.now() - t0;
      assert.ok(cancelMs < 3000, `cancelled after ${cancelMs} ms`);
      assert.equal(await p.inputValue('#method-select'), 'seg-grad-cam', 'the dropdown shows the method of the heatmap on screen');
      assert.equal(await p.isVisible('#ask-progress-row'), false);
      assert.equal(await p.isVisible('#overlay-busy'), false);
      assert.equal(await p.getAttribute('#panel-overlay', 'class'), 'panel');
      assert.ok(maxAbsDiff(await lastHeatmap(p), heat) === 0, 'the shown heatmap stays');

      // A new question while grid saliency runs: its answer comes at once, not after the long one.
      await p.selectOption('#method-select', 'grid-saliency');
      await p.waitForFunction(() => /^\d+ of 102 passes/.test(document.getElementById('ask-progress-text')?.textContent ?? ''), null, POLL);
      const t1 = Date.now();
      assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', 'seg-grad-cam')), 'answer');
      const supersedeMs = Date.now() - t1;
      assert.ok(supersedeMs < 3000, `the new answer came after ${supersedeMs} ms`);
      assert.equal(await hookValue<string>(p, 'h.lastExplanation.method'), 'seg-grad-cam');
      assert.ok(maxAbsDiff(await lastHeatmap(p), heat) < 1e-6, 'the same question, the same heatmap');
      assert.equal(await hookValue<number>(p, 'h.lastExplanation.tensors'), tensors, 'the stopped runs left no tensor behind');
      assert.equal(await hookValue<number>(p, 'h.errors'), 0);
      assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
      await p.close();
    },
  );

  test(
    'input-level methods disable the layer list, the layer grid and pinning, with the reason; an error reverts the method',
    T,
    async () => {
      const p = await newPage();
      const { width, height } = await canvasGeometry(p, '#view-image');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.5), Math.floor(height * 0.5))), 'answer');
      assert.equal(await p.isEnabled('#layer-select'), true);
      assert.equal(await p.isVisible('#layer-grid-run'), true);
      assert.equal(await p.isEnabled('#pin-a'), true);
      for (const method of ['saliency', 'gradient-x-input', 'integrated-gradients']) {
        assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', method)), 'answer');
        assert.equal(await p.isDisabled('#layer-select'), true, method);
        assert.match((await p.textContent('#layer-hint')) ?? '', /this method explains the input/);
        assert.equal(await p.isVisible('#layer-hint'), true);
        assert.equal(await p.isVisible('#layer-grid-run'), false, 'no layer grid');
        assert.equal(await p.isVisible('#layer-grid-off'), true);
        assert.equal(await p.isDisabled('#pin-a'), true);
        assert.match((await p.getAttribute('#pin-a', 'title')) ?? '', new RegExp(`${method} explains the input`));
      }
      assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', 'seg-grad-cam')), 'answer');
      assert.equal(await p.isEnabled('#layer-select'), true);
      assert.equal(await p.isVisible('#layer-grid-run'), true);
      assert.equal(await p.isEnabled('#pin-a'), true);
      // CAM cannot be chosen on the U-Net (greyed: see the next test); a method without a negative map disables the
      // negative checkbox (test/e2e-method-options.test.ts). ShapleyCAM at a layer before a max pooling has no second
      // derivative: an error, and the dropdown goes back.
      assert.equal(await nextAnswer(p, () => p.selectOption('#layer-select', 'enc1_relu2')), 'answer');
      assert.equal(await nextAnswer(p, () => p.selectOption('#method-select', 'shapley-cam')), 'error');
      assert.match((await hookValue<string>(p, 'h.lastError')) ?? '', /shapley-cam needs second derivatives/);
      assert.equal(await p.inputValue('#method-select'), 'seg-grad-cam');
      assert.equal(await hookValue<string>(p, 'h.lastExplanation.method'), 'seg-grad-cam');
      await p.close();
    },
  );

  test('at 800x900 the image and the heatmap sit side by side above the fold; below 800 px the controls fold away', T, async () => {
    const narrow = await browser.newContext({ viewport: { width: 800, height: 900 } });
    try {
      const p = await narrow.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      await p.goto(server.url);
      await waitReady(p);
      await p.evaluate(() => window.scrollTo(0, 0));
      const image = await p.locator('#view-image').boundingBox();
      const overlay = await p.locator('#view-overlay').boundingBox();
      assert.ok(image && overlay);
      await p.screenshot({ path: join(extra, 'narrow-800.png') });
      assert.ok(
        overlay.x >= 0 && overlay.y >= 0 && overlay.x + overlay.width <= 800 && overlay.y + overlay.height <= 900,
        `heatmap at ${JSON.stringify(overlay)}`,
      );
      assert.ok(Math.abs(image.y - overlay.y) < 2 && overlay.x > image.x + image.width, 'image and heatmap side by side');
      assert.ok(overlay.width >= 180, `heatmap ${overlay.width} px wide`);
      assert.equal(await p.isVisible('#controls'), true, 'the controls are shown at 800 px');
      assert.equal(await p.isVisible('#sidebar-toggle'), false);
      // The α chart keeps its proportions.
      const chart = await p.$eval('#alpha-chart', (c) => {
        const r = c.getBoundingClientRect();
        return { ratio: (c as HTMLCanvasElement).width / (c as HTMLCanvasElement).height, w: r.width, h: r.height };
      });
      if (chart.w > 0) assert.ok(Math.abs(chart.w / chart.h - chart.ratio) < 0.05, `α chart ${chart.w}x${chart.h}`);

      await p.setViewportSize({ width: 480, height: 900 });
      await p.waitForFunction(() => getComputedStyle(document.getElementById('controls') as HTMLElement).display === 'none', null, POLL);
      const small = await p.locator('#view-overlay').boundingBox();
      assert.ok(small && small.width >= 150, `heatmap ${small?.width} px wide at 480 px`);
      assert.ok(small.y + small.height <= 900);
      await p.click('#sidebar-toggle');
      assert.equal(await p.isVisible('#controls'), true);
      assert.equal(await p.getAttribute('#sidebar-toggle', 'aria-expanded'), 'true');
      await p.click('#sidebar-toggle');
      assert.equal(await p.isVisible('#controls'), false);
    } finally {
      await narrow.close();
    }
  });

  test(
    'methods the model cannot run are greyed with the reason; negative and the contrast class round-trip through the URL',
    T,
    async () => {
      const p = await newPage();
      const option = (value: string) =>
        p.$eval(`#method-select option[value="${value}"]`, (o) => ({
          disabled: (o as HTMLOptionElement).disabled,
          title: (o as HTMLOptionElement).title,
        }));
      // The bundled U-Net has no global-average-pool + dense head: CAM is greyed with the engine's reason.
      const cam = await option('cam');
      assert.equal(cam.disabled, true);
      assert.match(cam.title, /GlobalAveragePooling|average.pool/i);
      for (const runs of ['seg-grad-cam', 'lrp', 'ablation-cam', 'occlusion', 'rise'])
        assert.equal((await option(runs)).disabled, false, runs);

      const { width, height } = await canvasGeometry(p, '#view-image');
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.4), Math.floor(height * 0.5))), 'answer');
      const c = (await hookValue<{ classIndex: number }>(p, 'h.state()')).classIndex;
      const other = c === 0 ? 1 : 0;
      assert.equal(await nextAnswer(p, () => p.check('#negative-toggle')), 'answer');
      assert.equal(await nextAnswer(p, () => p.selectOption('#contrast-select', String(other))), 'answer');
      const shown = await hookValue<{ negative?: boolean; contrastClassIndex?: number }>(p, 'h.lastExplanation');
      assert.equal(shown.negative, true);
      assert.equal(shown.contrastClassIndex, other);
      const url = p.url();
      assert.match(url, /[?&]negative=1(&|$)/);
      assert.match(url, new RegExp(`[?&]contrast=${other}(&|$)`));
      const heat = await lastHeatmap(p);

      const copy = await newPage(url.slice(server.url.length));
      await copy.waitForFunction(() => (window as unknown as { __segGradCam: { answers: number } }).__segGradCam.answers > 0, null, POLL);
      assert.equal(await copy.isChecked('#negative-toggle'), true);
      assert.equal(await copy.inputValue('#contrast-select'), String(other));
      const restored = await hookValue<{ negative?: boolean; contrastClassIndex?: number }>(copy, 'h.lastExplanation');
      assert.equal(restored.negative, true);
      assert.equal(restored.contrastClassIndex, other);
      assert.ok(maxAbsDiff(await lastHeatmap(copy), heat) < 1e-6, 'the link gives the same heatmap');
      await copy.close();
      await p.close();
    },
  );

  test(
    'the URL carries the tool and the fixed class; a legend click asks once; Clear resets the answer and the grid; labels beside a URL model name the classes in messages',
    T,
    async () => {
      const p = await newPage('?model=url:/extra/tiny-named/model.json&image=url:/extra/tiny.png');
      // The labels file beside model.json names the classes.
      await p.waitForFunction(() => /sea|sand|rock|weed/.test(document.getElementById('legend')?.textContent ?? ''), null, POLL);
      assert.match((await p.textContent('#class-select')) ?? '', /0 · sea.*1 · sand.*2 · rock.*3 · weed/s);

      // A fixed class shows as such, with its reset; the tool and the class go into the URL and come back from it.
      await useTool(p, 'object');
      await p.selectOption('#class-select', '2');
      assert.equal(await p.isVisible('#class-fixed'), true);
      assert.match((await p.textContent('#class-fixed-text')) ?? '', /class: rock/);
      await p.waitForFunction(() => /tool=object/.test(location.search) && /class=2/.test(location.search), null, POLL);
      const copy = await newPage(p.url().slice(server.url.length));
      assert.equal(await copy.isChecked('#tools input[value="object"]'), true, 'the tool is restored');
      assert.equal(await copy.inputValue('#class-select'), '2', 'the class is restored');
      assert.match((await copy.textContent('#class-fixed-text')) ?? '', /class: rock/);
      assert.match(copy.url(), /labels=/);
      await copy.close();
      await p.click('#class-reset');
      assert.equal(await p.inputValue('#class-select'), 'auto');
      assert.equal(await p.isVisible('#class-fixed'), false);
      await useTool(p, 'pixel');

      // A legend click explains that class once; the next click explains the prediction at the pixel.
      const legend = await p.$$eval('#legend button', (bs) => bs.map((b) => Number(b.getAttribute('data-class'))));
      const c = legend[legend.length - 1];
      assert.equal(await nextAnswer(p, () => p.click(`#legend button[data-class="${c}"]`)), 'answer');
      assert.deepEqual(await hookValue(p, '[h.lastRegion.kind, h.lastExplanation.classIndex]'), ['class', c]);
      assert.equal(await p.inputValue('#class-select'), 'auto', 'the legend does not fix the class');
      const other = await p.evaluate((cls) => {
        const h = (window as unknown as { __segGradCam: { lastExplanation: { prediction: { labels: Int32Array; width: number } } } })
          .__segGradCam;
        const i = h.lastExplanation.prediction.labels.findIndex((v) => v !== cls);
        return [i % h.lastExplanation.prediction.width, Math.floor(i / h.lastExplanation.prediction.width)];
      }, c);
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', other[0], other[1])), 'answer');
      assert.notEqual(await hookValue<number>(p, 'h.lastExplanation.classIndex'), c);

      // The grid, then a new region: the grid is cleared (its cells were another question); Clear resets answer and grid.
      await p.click('#layer-grid-run');
      await p.waitForFunction(() => /layers in/.test(document.getElementById('layer-grid-status')?.textContent ?? ''), null, POLL);
      assert.ok((await p.locator('#layer-grid .cell').count()) > 0);
      assert.equal(await nextAnswer(p, () => clickPixel(p, '#view-image', 3, 3)), 'answer');
      assert.equal(await p.locator('#layer-grid .cell').count(), 0, 'the grid of the previous region is gone');
      await p.click('#layer-grid-run');
      await p.waitForFunction(() => /layers in/.test(document.getElementById('layer-grid-status')?.textContent ?? ''), null, POLL);
      await p.click('#clear-region');
      assert.equal(await p.locator('#layer-grid .cell').count(), 0);
      assert.doesNotMatch((await p.textContent('#answer-text')) ?? '', /\|M\|/);
      assert.equal((await p.textContent('#timing')) ?? '', '');

      // A class with no pixel in the prediction: the message names it.
      const absent = [0, 1, 2, 3].find((k) => !legend.includes(k));
      if (absent !== undefined) {
        await p.selectOption('#class-select', String(absent));
        assert.equal(await nextAnswer(p, () => p.click('#class-region')), 'error');
        const names = ['sea', 'sand', 'rock', 'weed'];
        assert.match((await p.textContent('#error-text')) ?? '', new RegExp(`class ${absent} \\(${names[absent]}\\)`));
      }
      await p.close();
    },
  );
});
