/**
 * End-to-end tests of the explorer's volume view (web/volume.html) in headless Chromium
 * (playwright-core, like test/e2e.test.ts): the default 3-D model and NIfTI volume load, a click
 * on a slice, a box dragged on a slice and an object pick each give the heatmap the library's
 * explainVolume computes in Node (onnxruntime-node, the same fixture files) within 1e-4, and the
 * three views fit the viewport at 800 and 1600 px wide. Volumes larger than the model's patch
 * (sliding windows) give explainVolumeGrid's heatmap; the method picker gives the library's map of
 * the method; Cancel stops a long explanation and leaves the page usable; PNG slices picked as
 * files read as the CLI's --slices folder reads them; a 3-D TF.js LayersModel (model.json + weights)
 * gives the library's LayersVolumeModel answer; a model with free input sizes runs sliding windows
 * at the Patch given, as openVolumeModel opens it. Skipped with a message when chromium is
 * missing, unless CI is set.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import * as tf from '@tensorflow/tfjs';
import { UpSampling3D } from '../src/engine/tfjs-layers/upsampling3d.js';
import { LayersVolumeModel } from '../src/engine/tfjs-layers/volume.js';
import { encodePng } from '../src/io/codec.js';
import { encodeNifti1, type NiftiVolume } from '../src/io/nifti.js';
import { readNiftiFile } from '../src/io/nifti-node.js';
import { camOnVolume, defaultVolumeLayer, explainVolume } from '../src/volume/explain.js';
import { explainVolumeGrid, openVolumeModel, type VolumeGridOptions } from '../src/volume/explain-grid.js';
import type { MethodOptions } from '../src/methods/index.js';
import { zScore } from '../src/volume/intensity.js';
import { VOLUME_METHODS } from '../src/volume/methods.js';
import { readSliceFolder } from '../src/volume/slices-node.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { Dims3, VolumeRegion, Voxel } from '../src/volume/regions.js';
import { buildWeb, chromiumMissing, hookValue, launchBrowser, nextAnswer, waitReady } from '../web/e2e-harness.js';
import { serve } from '../web/serve.js';
import { DEFAULT_VOLUME_SAMPLE } from '../web/src/volume/defaults.js';
import { asVolumeModel } from '../web/src/volume/layers-volume.js';

const missing = chromiumMissing();
const ci = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());
if (missing && ci) throw new Error(`the end-to-end tests must run in CI: ${missing}`);
const skip = missing ? `end-to-end tests skipped: ${missing}` : false;
const T = { timeout: 240_000, skip };

const repo = new URL('../', import.meta.url);
const VIEWS = ['axial', 'coronal', 'sagittal'] as const;
type View = (typeof VIEWS)[number];

let browser: Browser;
let context: BrowserContext;
let server: Awaited<ReturnType<typeof serve>>;
let page: Page;
let model: OnnxVolumeModel;
let volume: Float32Array;
let dims: Dims3;
let nifti: NiftiVolume;
const pageErrors: string[] = [];

/** The library's answer in Node: the CAM on the volume grid, on the layer grid, α, class and S. */
async function reference(region: VolumeRegion, layer?: string, method?: string, vol = volume, methodOptions?: MethodOptions) {
  const x = await explainVolume(model, vol, { region, layer, method, methodOptions });
  return { ...x, heat: camOnVolume(x.cam, x.camDims, dims) };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function floats(p: Page, fn: 'lastHeatmapBase64' | 'lastCamBase64' | 'volumeBase64'): Promise<Float32Array> {
  const b64 = await hookValue<string | null>(p, `h.${fn}()`);
  assert.ok(b64, 'the page has an answer');
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

interface PageAnswer {
  layer: string;
  classId: number;
  score: number;
  alpha: number[];
  camDims: number[];
  cached: boolean;
}
const pageAnswer = (p: Page) =>
  hookValue<PageAnswer>(
    p,
    '(({ layer, classId, score, alpha, camDims, cached }) => ({ layer, classId, score, alpha: [...alpha], camDims, cached }))(h.lastAnswer)',
  );

/** The page's heatmap, CAM, α, class and S equal the library's in Node within 1e-4 (relative to each array's largest value). */
async function assertSameAsLibrary(p: Page, region: VolumeRegion, method?: string, vol = volume, methodOptions?: MethodOptions) {
  const ref = await reference(region, undefined, method, vol, methodOptions);
  const got = await pageAnswer(p);
  assert.equal(got.layer, ref.layer);
  assert.equal(got.classId, ref.classId);
  assert.deepEqual(got.camDims, ref.camDims);
  assert.ok(maxAbs(ref.heat) > 0, 'the reference heatmap is not all zero (the comparison can fail)');
  const heat = await floats(p, 'lastHeatmapBase64');
  const cam = await floats(p, 'lastCamBase64');
  assert.ok(
    maxAbsDiff(heat, ref.heat) <= 1e-4 * maxAbs(ref.heat),
    `heatmap off by ${maxAbsDiff(heat, ref.heat)} (max ${maxAbs(ref.heat)})`,
  );
  assert.ok(maxAbsDiff(cam, ref.cam) <= 1e-4 * maxAbs(ref.cam), `CAM off by ${maxAbsDiff(cam, ref.cam)}`);
  assert.ok(maxAbsDiff(got.alpha, ref.alpha) <= 1e-4 * maxAbs(ref.alpha), `α off by ${maxAbsDiff(got.alpha, ref.alpha)}`);
  assert.ok(Math.abs(got.score - ref.score) <= 1e-4 * Math.max(1, Math.abs(ref.score)));
  return ref;
}

/** Rows and columns of a view's slice, and the voxel under a cell (the orientation written out by hand: docs/volumes.md). */
function viewCells(view: View, size = dims): { rows: number; cols: number } {
  const [D, H, W] = size;
  return view === 'axial' ? { rows: H, cols: W } : view === 'coronal' ? { rows: D, cols: W } : { rows: D, cols: H };
}

/** The page point at the centre of a cell of a view. */
async function cellPoint(p: Page, view: View, row: number, col: number, size = dims): Promise<[number, number]> {
  const canvas = `#view-${view} canvas`;
  await p.locator(canvas).scrollIntoViewIfNeeded();
  const r = await p.$eval(
    canvas,
    (c) => c.getBoundingClientRect().toJSON() as { left: number; top: number; width: number; height: number },
  );
  const { rows, cols } = viewCells(view, size);
  return [r.left + ((col + 0.5) / cols) * r.width, r.top + ((row + 0.5) / rows) * r.height];
}

async function clickCell(p: Page, view: View, row: number, col: number, size = dims): Promise<void> {
  const [x, y] = await cellPoint(p, view, row, col, size);
  await p.mouse.click(x, y);
}

const useTool = (p: Page, tool: string) => p.click(`#vol-tools label:has(input[value="${tool}"])`);

/** The fixture volume mirrored out to `size` ([D, H, W]): larger than the model's patch, with the fixture's values. */
function mirrored(size: Dims3): Float32Array {
  const [D, H, W] = dims;
  const m = (x: number, n: number) => {
    const period = 2 * n - 2;
    const r = x % period;
    return r < n ? r : period - r;
  };
  const out = new Float32Array(size[0] * size[1] * size[2]);
  let k = 0;
  for (let d = 0; d < size[0]; d++)
    for (let h = 0; h < size[1]; h++) for (let w = 0; w < size[2]; w++) out[k++] = volume[(m(d, D) * H + m(h, H)) * W + m(w, W)];
  return out;
}

/** A [D, H, W] volume as a NIfTI file for the file picker (the fixture's geometry). */
const niftiFile = (data: Float32Array, size: Dims3, name: string) => ({
  name,
  mimeType: 'application/octet-stream',
  buffer: Buffer.from(encodeNifti1(data, [size[2], size[1], size[0]], nifti)),
});

/** Opens files with the picker and waits for the page's prediction of the new volume. */
async function openVolume(p: Page, files: Parameters<Page['setInputFiles']>[1]): Promise<void> {
  const n = await hookValue<number>(p, 'h.predictions');
  await p.setInputFiles('#vol-files', files);
  await p.waitForFunction((k) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > k, n, {
    timeout: 120_000,
    polling: 50,
  });
}

interface GridPageAnswer extends PageAnswer {
  method: string;
  sliding: { total: number; touched: number; skipped: number; forwardRuns: number } | null;
}

/**
 * With sliding windows: the page's heatmap, α, class, S and patch counts equal explainVolumeGrid's in Node within 1e-4
 * (`extra`: the overlap and method options the page was given, the forward runs the question needed besides the kept
 * prediction, and a wider tolerance where one is stated).
 */
async function assertSameAsGrid(
  p: Page,
  vol: Float32Array,
  size: Dims3,
  region: VolumeRegion,
  method?: string,
  m = model,
  extra: Pick<VolumeGridOptions, 'overlap' | 'methodOptions'> & { forwardRuns?: number; tolerance?: number } = {},
) {
  const { forwardRuns = 0, tolerance = 1e-4, ...options } = extra;
  const ref = await explainVolumeGrid(m, vol, size, { region, method, ...options });
  assert.ok(ref.sliding, 'the reference ran sliding windows');
  const got = await hookValue<GridPageAnswer>(
    p,
    '(({ layer, method, classId, score, alpha, camDims, cached, sliding }) => ({ layer, method, classId, score, alpha: [...alpha], camDims, cached, sliding }))(h.lastAnswer)',
  );
  assert.equal(got.method, ref.method);
  assert.equal(got.layer, ref.layer);
  assert.equal(got.classId, ref.classId);
  assert.deepEqual(got.sliding, { total: ref.patches.total, touched: ref.patches.touched, skipped: ref.patches.skipped, forwardRuns });
  assert.ok(maxAbs(ref.cam) > 0, 'the reference heatmap is not all zero (the comparison can fail)');
  const heat = await floats(p, 'lastHeatmapBase64');
  const off = `heatmap off by ${maxAbsDiff(heat, ref.cam)} (max ${maxAbs(ref.cam)}), α by ${maxAbsDiff(got.alpha, ref.alpha)} (max ${maxAbs(ref.alpha)})`;
  assert.ok(maxAbsDiff(heat, ref.cam) <= tolerance * maxAbs(ref.cam), off);
  assert.ok(maxAbsDiff(got.alpha, ref.alpha) <= tolerance * maxAbs(ref.alpha), off);
  assert.ok(Math.abs(got.score - ref.score) <= 1e-4 * Math.max(1, Math.abs(ref.score)), `S ${got.score} vs ${ref.score}`);
  return ref;
}

const lastProgress = (p: Page) => hookValue<string[]>(p, 'h.progress');
const clearProgress = (p: Page) =>
  p.evaluate(() => void ((window as unknown as { __segGradCam: { progress: string[] } }).__segGradCam.progress.length = 0));

/** Clicks Cancel once a few of the 64 patches of a stage ran (and before the last), and waits for the page to say so. */
async function cancelAfterPatches(p: Page, stage: 'predicting' | 'explaining'): Promise<void> {
  await p.waitForFunction(
    (prefix) => {
      const last = (window as unknown as { __segGradCam: { progress: string[] } }).__segGradCam.progress.at(-1) ?? '';
      const m = new RegExp(`^${prefix}: patch (\\d+) of 64$`).exec(last);
      return m !== null && Number(m[1]) >= 2;
    },
    stage,
    { timeout: 120_000, polling: 20 },
  );
  await p.click('#vol-cancel');
  await p.waitForFunction(() => document.getElementById('status-text')?.textContent === 'cancelled', null, { timeout: 30_000 });
}

/** The worker stopped before its next patch run: no progress after a short while, and the last patch never ran. */
async function assertStopped(p: Page, lastPatch: string): Promise<void> {
  await p.waitForTimeout(500);
  const stopped = await lastProgress(p);
  await p.waitForTimeout(1500);
  assert.deepEqual(await lastProgress(p), stopped, 'no patch ran after the cancel');
  assert.ok(!stopped.includes(lastPatch), stopped.slice(-3).join('; '));
  assert.ok(await p.isHidden('#vol-cancel'), 'Cancel shows only while something runs');
}

/** A small seeded 3-D U-Net in TF.js (Conv3D, MaxPooling3D, UpSampling3D, a concatenated skip) reading 8 × 10 × 12 patches. */
function layersUnet(): tf.LayersModel {
  const L = tf.layers;
  let seed = 7;
  const conv = (filters: number, name: string, kernelSize = 3, activation?: 'relu') =>
    L.conv3d({
      filters,
      kernelSize,
      padding: 'same',
      name,
      activation,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed++ }),
    });
  const x = tf.input({ shape: [8, 10, 12, 1] });
  const e1 = conv(4, 'enc1', 3, 'relu').apply(x) as tf.SymbolicTensor;
  const p1 = L.maxPooling3d({ poolSize: 2, name: 'pool1' }).apply(e1) as tf.SymbolicTensor;
  const b = conv(6, 'bottleneck', 3, 'relu').apply(p1) as tf.SymbolicTensor;
  const u = new UpSampling3D({ size: 2, name: 'up' }).apply(b) as tf.SymbolicTensor;
  const k = L.concatenate({ axis: -1, name: 'cat' }).apply([u, e1]) as tf.SymbolicTensor;
  const d = conv(4, 'dec1', 3, 'relu').apply(k) as tf.SymbolicTensor;
  const y = conv(3, 'logits', 1).apply(d) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y });
}

/** A LayersModel as the files the converter writes: model.json and one weights file. */
async function layersFiles(m: tf.LayersModel): Promise<Array<{ name: string; mimeType: string; buffer: Buffer }>> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(
    tf.io.withSaveHandler((a) => {
      saved = a;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  const a = saved as unknown as tf.io.ModelArtifacts;
  const parts = (Array.isArray(a.weightData) ? a.weightData : [a.weightData]) as ArrayBuffer[];
  const weights = Buffer.concat(parts.map((p) => Buffer.from(p)));
  const json = {
    format: 'layers-model',
    generatedBy: 'test',
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
  };
  return [
    { name: 'model.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(json)) },
    { name: 'weights.bin', mimeType: 'application/octet-stream', buffer: weights },
  ];
}

describe('the volume view in headless Chromium', () => {
  before(async () => {
    if (skip) return;
    const [bytes, read] = await Promise.all([
      Promise.resolve(readFileSync(new URL(DEFAULT_VOLUME_SAMPLE.model, repo))),
      readNiftiFile(new URL(DEFAULT_VOLUME_SAMPLE.volume, repo).pathname),
      buildWeb(),
    ]);
    nifti = read;
    model = await OnnxVolumeModel.create(bytes, nodeRuntime);
    volume = nifti.data;
    dims = [nifti.dims[2], nifti.dims[1], nifti.dims[0]];
    server = await serve();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await model?.dispose();
  });

  test('the default model and volume load: 3-D layers listed with their shapes, the bottleneck chosen as in the library', T, async () => {
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}volume.html`);
    await waitReady(page);
    assert.equal(await hookValue<string | null>(page, 'h.lastError'), null);
    const st = await hookValue<{ model: { layers: Array<{ name: string; shape: number[] }>; bottleneck: string }; volumeDims: number[] }>(
      page,
      'h.state()',
    );
    assert.deepEqual(st.volumeDims, dims);
    assert.deepEqual(
      st.model.layers.map((l) => [l.name, l.shape]),
      model.layers().map((l) => [l.name, l.shape]),
    );
    assert.equal(st.model.bottleneck, defaultVolumeLayer(model));
    const options = await page.$$eval('#vol-layer option', (os) => os.map((o) => o.textContent ?? ''));
    assert.ok(
      options.some((o) => /bottleneck/.test(o) && /\[12×4×5×6\]/.test(o)),
      options.join('\n'),
    );
    assert.equal(await hookValue<number>(page, 'h.predictions'), 1);
  });

  test('a click on a voxel of each view gives the library heatmap within 1e-4; the other views move to the voxel', T, async (t) => {
    const [D] = dims;
    // Axial at its middle slice d = 8: the cell (row h, column w) is voxel (8, h, w).
    assert.equal(await nextAnswer(page, () => clickCell(page, 'axial', 6, 15)), 'answer');
    assert.deepEqual(await hookValue<VolumeRegion>(page, 'h.lastRegion'), { kind: 'voxel', voxel: [8, 6, 15] });
    await assertSameAsLibrary(page, { kind: 'voxel', voxel: [8, 6, 15] });
    // The sliders moved to the voxel: coronal at h = 6, sagittal at w = 15.
    assert.deepEqual((await hookValue<{ slices: number[] }>(page, 'h.state()')).slices, [8, 6, 15]);
    // Sagittal at w = 15: row r is d = D − 1 − r, column c is h.
    assert.equal(await nextAnswer(page, () => clickCell(page, 'sagittal', 3, 12)), 'answer');
    const v: Voxel = [D - 1 - 3, 12, 15];
    assert.deepEqual(await hookValue<VolumeRegion>(page, 'h.lastRegion'), { kind: 'voxel', voxel: v });
    await assertSameAsLibrary(page, { kind: 'voxel', voxel: v });
    // Coronal at h = 12: row r is d = D − 1 − r, column c is w.
    assert.equal(await nextAnswer(page, () => clickCell(page, 'coronal', 10, 2)), 'answer');
    await assertSameAsLibrary(page, { kind: 'voxel', voxel: [D - 1 - 10, 12, 2] });
    const timings = await hookValue<Array<{ wallMs: number; ms: number; cached: boolean }>>(page, 'h.timings');
    assert.ok(
      timings.every((x) => x.cached),
      'every answer reused the one prediction',
    );
    assert.equal(await hookValue<number>(page, 'h.predictions'), 1, 'one forward pass per volume');
    t.diagnostic(`click to heatmap (ms): ${timings.map((x) => x.wallMs.toFixed(0)).join(', ')}`);
  });

  test('a box dragged on a slice spans the chosen depth, and an object pick explains the 3-D component', T, async () => {
    await useTool(page, 'box');
    await page.fill('#vol-depth', '3');
    // On axial at d = D − 1 − 10 = 5 (the last click moved it there): cells (2, 3) to (7, 9).
    const d = dims[0] - 1 - 10;
    const a = await cellPoint(page, 'axial', 2, 3);
    const b = await cellPoint(page, 'axial', 7, 9);
    const drag = async () => {
      await page.mouse.move(...a);
      await page.mouse.down();
      await page.mouse.move(...b, { steps: 5 });
      await page.mouse.up();
    };
    assert.equal(await nextAnswer(page, drag), 'answer');
    const box: VolumeRegion = { kind: 'box', box: [d - 1, 2, 3, d + 1, 7, 9] };
    assert.deepEqual(await hookValue<VolumeRegion>(page, 'h.lastRegion'), box);
    await assertSameAsLibrary(page, box);

    await useTool(page, 'component');
    assert.equal(await nextAnswer(page, () => clickCell(page, 'axial', 10, 12)), 'answer');
    const comp: VolumeRegion = { kind: 'component', voxel: [d, 10, 12], connectivity: 26 };
    assert.deepEqual(await hookValue<VolumeRegion>(page, 'h.lastRegion'), comp);
    await assertSameAsLibrary(page, comp);
    await useTool(page, 'voxel');
  });

  test('a later click supersedes an earlier one: the heatmap drawn is the last voxel’s', T, async () => {
    const before = await hookValue<number>(page, 'h.answers');
    const [x1, y1] = await cellPoint(page, 'axial', 1, 1);
    const [x2, y2] = await cellPoint(page, 'axial', 12, 20);
    await page.mouse.click(x1, y1);
    await page.mouse.click(x2, y2);
    await page.waitForFunction(
      (n) => {
        const h = (window as unknown as { __segGradCam: { answers: number; lastRegion: { voxel?: number[] } | null } }).__segGradCam;
        return h.answers > n && h.lastRegion?.voxel?.[1] === 12;
      },
      before,
      { timeout: 120_000, polling: 50 },
    );
    const slice = (await hookValue<{ slices: number[] }>(page, 'h.state()')).slices[0];
    await assertSameAsLibrary(page, { kind: 'voxel', voxel: [slice, 12, 20] });
  });

  test('the URL reproduces a voxel question; a file that is not NIfTI is answered in the page', T, async () => {
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${server.url}volume.html?voxel=4,15,20`);
    await waitReady(p);
    assert.equal(await hookValue<number>(p, 'h.answers'), 1);
    await assertSameAsLibrary(p, { kind: 'voxel', voxel: [4, 15, 20] });
    const errors = await hookValue<number>(p, 'h.errors');
    await p.setInputFiles('#vol-files', { name: 'broken.nii', mimeType: 'application/octet-stream', buffer: Buffer.from('not a volume') });
    await p.waitForFunction((n) => (window as unknown as { __segGradCam: { errors: number } }).__segGradCam.errors > n, errors, {
      timeout: 60_000,
      polling: 50,
    });
    assert.match((await p.textContent('#error-text')) ?? '', /NIfTI/);
    await p.close();
  });

  test('the three views fit the viewport at 800 and 1600 px wide (screenshots)', T, async () => {
    // The docs' screenshots: SCREENSHOT_DIR=docs/images (else a temporary folder).
    const dir = process.env.SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'seg-grad-cam-volume-'));
    mkdirSync(dir, { recursive: true });
    for (const [width, height] of [
      [800, 900],
      [1600, 1000],
    ]) {
      await page.setViewportSize({ width, height });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForTimeout(200);
      for (const view of VIEWS) {
        const r = await page.$eval(`#view-${view} canvas`, (c) => c.getBoundingClientRect().toJSON() as DOMRect);
        assert.ok(r.width > 100, `${view} is drawn at a usable size at ${width} px (${r.width} px)`);
        assert.ok(
          r.left >= 0 && r.top >= 0 && r.right <= width && r.bottom <= height,
          `${view} within ${width}x${height}: ${JSON.stringify(r)}`,
        );
      }
      await page.screenshot({ path: join(dir, width === 1600 ? 'volume-explorer.png' : `volume-explorer-${width}.png`) });
    }
    if (!process.env.SCREENSHOT_DIR) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(pageErrors, []);
  });

  test('the method picker lists the library’s volume methods and gives the library’s map of the chosen one', T, async () => {
    await page.setViewportSize({ width: 1600, height: 1000 });
    const listed = await page.$$eval('#vol-method option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(listed, [...VOLUME_METHODS]);
    const region = (await hookValue<VolumeRegion>(page, 'h.lastRegion')) as VolumeRegion;
    // A change of method asks the shown question again.
    assert.equal(await nextAnswer(page, () => page.selectOption('#vol-method', 'layer-cam')), 'answer');
    assert.equal((await pageAnswer(page)).layer, defaultVolumeLayer(model));
    await assertSameAsLibrary(page, region, 'layer-cam');
    const [a, b] = [await reference(region, undefined, 'layer-cam'), await reference(region)];
    assert.ok(maxAbsDiff(a.heat, b.heat) > 1e-2 * maxAbs(a.heat), 'LayerCAM differs from Seg-Grad-CAM here (the check can fail)');
    assert.match(page.url(), /method=layer-cam/);
    assert.equal(await nextAnswer(page, () => page.selectOption('#vol-method', 'seg-grad-cam')), 'answer');
    const positive = await assertSameAsLibrary(page, region);
    // The method's options go to the library: the negative map.
    assert.equal(await nextAnswer(page, () => page.check('#vol-negative')), 'answer');
    const negative = await assertSameAsLibrary(page, region, undefined, volume, { negative: true });
    assert.ok(maxAbsDiff(negative.heat, positive.heat) > 1e-2 * maxAbs(negative.heat), 'the negative map differs here');
    // A method without a negative map: the box is cleared and disabled, and the answer is the method's map.
    assert.equal(await nextAnswer(page, () => page.selectOption('#vol-method', 'eigen-cam')), 'answer');
    assert.ok(await page.isDisabled('#vol-negative'));
    assert.ok(!(await page.isChecked('#vol-negative')));
    await assertSameAsLibrary(page, region, 'eigen-cam');
    assert.equal(await nextAnswer(page, () => page.selectOption('#vol-method', 'seg-grad-cam')), 'answer');
    assert.ok(await page.isEnabled('#vol-negative'));
    await assertSameAsLibrary(page, region);
  });

  let big: Page;
  test(
    'a volume larger than the model’s patch: sliding windows with patch progress, explainVolumeGrid’s heatmap within 1e-4, one prediction per volume',
    T,
    async (t) => {
      big = await context.newPage();
      big.on('pageerror', (e) => pageErrors.push(e.message));
      await big.goto(`${server.url}volume.html`);
      await waitReady(big);
      // 24 × 30 × 36 against the 16 × 20 × 24 patch: two windows per axis, eight patches.
      const size: Dims3 = [24, 30, 36];
      const vol = mirrored(size);
      await openVolume(big, niftiFile(vol, size, 'big.nii'));
      const predictions = await hookValue<number>(big, 'h.predictions');
      assert.deepEqual((await hookValue<{ volumeDims: number[] }>(big, 'h.state()')).volumeDims, size);
      assert.ok((await lastProgress(big)).includes('predicting: patch 8 of 8'), (await lastProgress(big)).join('; '));
      assert.match((await big.textContent('#vol-timing')) ?? '', /8 sliding-window patches/);
      // Axial at d = 12 (the middle): voxel (12, 15, 18) lies in the overlap of all eight patches.
      assert.equal((await hookValue<{ slices: number[] }>(big, 'h.state()')).slices[0], 12);
      assert.equal(await nextAnswer(big, () => clickCell(big, 'axial', 15, 18, size)), 'answer');
      const centre = await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [12, 15, 18] });
      assert.equal(centre.patches.touched, 8);
      // The docs' screenshot of a sliding-window answer (SCREENSHOT_DIR=docs/images).
      if (process.env.SCREENSHOT_DIR) await big.screenshot({ path: join(process.env.SCREENSHOT_DIR, 'volume-explorer-sliding.png') });
      assert.ok((await lastProgress(big)).includes('explaining: patch 8 of 8'));
      // Near a corner: fewer patches run backward, the others are skipped.
      assert.equal(await nextAnswer(big, () => clickCell(big, 'axial', 1, 2, size)), 'answer');
      const corner = await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [12, 1, 2] });
      assert.ok(corner.patches.skipped > 0 && corner.patches.touched > 0, JSON.stringify(corner.patches));
      // The method picker on sliding windows.
      assert.equal(await nextAnswer(big, () => big.selectOption('#vol-method', 'grad-cam++')), 'answer');
      const pp = await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [12, 1, 2] }, 'grad-cam++');
      assert.ok(maxAbsDiff(pp.cam, corner.cam) > 1e-2 * maxAbs(pp.cam), 'Grad-CAM++ differs from Seg-Grad-CAM here (the check can fail)');
      await big.selectOption('#vol-method', 'seg-grad-cam');
      const timings = await hookValue<Array<{ wallMs: number; cached: boolean }>>(big, 'h.timings');
      assert.ok(
        timings.every((x) => x.cached),
        'every answer reused the prediction',
      );
      assert.equal(await hookValue<number>(big, 'h.predictions'), predictions, 'one sliding-window prediction per volume');
      t.diagnostic(`click to heatmap with 8 patches (ms): ${timings.map((x) => x.wallMs.toFixed(0)).join(', ')}`);

      // Overlap below 0.5 is refused with a message, as the library's explain-volume refuses it; nothing runs.
      const errors = await hookValue<number>(big, 'h.errors');
      await big.fill('#vol-overlap', '0.3');
      await big.dispatchEvent('#vol-overlap', 'change');
      await big.waitForFunction((n) => (window as unknown as { __segGradCam: { errors: number } }).__segGradCam.errors > n, errors, {
        timeout: 30_000,
      });
      assert.match((await big.textContent('#error-text')) ?? '', /overlap 0\.3: .*\[0\.5, 1\)/);
      assert.equal(await hookValue<number>(big, 'h.predictions'), predictions, 'a refused overlap does not predict again');
      await big.click('#error-close');
      // Overlap 0.75: three windows per axis, 27 patches; the prediction runs again and the shown question is asked again.
      await clearProgress(big);
      const answered = await nextAnswer(big, async () => {
        await big.fill('#vol-overlap', '0.75');
        await big.dispatchEvent('#vol-overlap', 'change');
      });
      assert.equal(answered, 'answer');
      assert.equal(await hookValue<number>(big, 'h.predictions'), predictions + 1);
      assert.ok((await lastProgress(big)).includes('predicting: patch 27 of 27'), (await lastProgress(big)).join('; '));
      const o = await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [12, 1, 2] }, undefined, model, { overlap: 0.75 });
      t.diagnostic(`overlap 0.75: ${o.patches.touched} of ${o.patches.total} patches touched`);
      assert.equal(o.patches.total, 27);
      // The check can fail: the answer at overlap 0.5 differs from this one by more than the tolerance.
      assert.ok(maxAbsDiff(o.cam, corner.cam) > 1e-3 * maxAbs(o.cam), 'overlap 0.75 changes the heatmap here');
      assert.match(big.url(), /overlap=0\.75/);
      // A method option on sliding windows: Score-CAM on 4 channels (by default it scores all 12 of the bottleneck).
      const corner75: VolumeRegion = { kind: 'voxel', voxel: [12, 1, 2] };
      // Score-CAM runs each of the 3 touched patches forward once for the baseline and once per channel scored (all 12,
      // then 4): the forward-run count shows the option reached the library. Its α are differences of two scores of
      // masked volumes run by onnxruntime-web here and onnxruntime-node there (other kernels): 1e-3 of the maximum.
      const scoreCam = (maxChannels?: number) => ({
        overlap: 0.75,
        methodOptions: maxChannels ? { maxChannels } : undefined,
        forwardRuns: 3 * (1 + (maxChannels ?? 12)),
        tolerance: 1e-3,
      });
      assert.equal(await nextAnswer(big, () => big.selectOption('#vol-method', 'score-cam')), 'answer');
      const all = await assertSameAsGrid(big, vol, size, corner75, 'score-cam', model, scoreCam());
      assert.equal(
        await nextAnswer(big, async () => {
          await big.fill('#vol-max-channels', '4');
          await big.dispatchEvent('#vol-max-channels', 'change');
        }),
        'answer',
      );
      const four = await assertSameAsGrid(big, vol, size, corner75, 'score-cam', model, scoreCam(4));
      assert.match((await big.textContent('#vol-timing')) ?? '', /\+ 15 forward runs/);
      assert.ok(maxAbsDiff(four.cam, all.cam) > 1e-2 * maxAbs(four.cam), 'Score-CAM on 4 channels differs from all channels here');
      assert.equal(
        await nextAnswer(big, async () => {
          await big.fill('#vol-max-channels', '');
          await big.dispatchEvent('#vol-max-channels', 'change');
        }),
        'answer',
      );
      assert.equal(await nextAnswer(big, () => big.selectOption('#vol-method', 'seg-grad-cam')), 'answer');
      // Back to 0.5 for the next test.
      const n = await hookValue<number>(big, 'h.predictions');
      await big.fill('#vol-overlap', '0.5');
      await big.dispatchEvent('#vol-overlap', 'change');
      await big.waitForFunction((k) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > k, n, {
        timeout: 120_000,
      });
      await big.waitForFunction(() => document.getElementById('status-text')?.textContent === 'ready', null, { timeout: 60_000 });
    },
  );

  test(
    'Cancel stops a long prediction and a long explanation between two patches, says so, keeps the shown heatmap, and the page answers the next click',
    T,
    async () => {
      // 40 × 50 × 60: four windows per axis, 64 patches; a class region reaches every one of them.
      const size: Dims3 = [40, 50, 60];
      const vol = mirrored(size);
      // Cancel during the prediction (64 forward runs): it stops, and the next question predicts again.
      const predictions = await hookValue<number>(big, 'h.predictions');
      await clearProgress(big);
      await big.setInputFiles('#vol-files', niftiFile(vol, size, 'bigger.nii'));
      await cancelAfterPatches(big, 'predicting');
      await assertStopped(big, 'predicting: patch 64 of 64');
      assert.equal(await hookValue<number>(big, 'h.predictions'), predictions, 'no prediction came');
      assert.equal(await hookValue<number>(big, 'h.cancelled'), 1);
      assert.match((await big.textContent('#vol-timing')) ?? '', /prediction cancelled/);
      const d = (await hookValue<{ slices: number[] }>(big, 'h.state()')).slices[0];
      assert.equal(await nextAnswer(big, () => clickCell(big, 'axial', 20, 30, size)), 'answer');
      assert.ok((await lastProgress(big)).includes('predicting: patch 64 of 64'), 'the question predicted the volume again');
      assert.equal(await hookValue<number>(big, 'h.predictions'), predictions + 1);
      await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [d, 20, 30] });
      const answers = await hookValue<number>(big, 'h.answers');
      const heatBefore = await floats(big, 'lastHeatmapBase64');
      assert.ok(await big.isHidden('#vol-cancel'), 'Cancel shows only while something runs');

      await useTool(big, 'class');
      await clearProgress(big);
      await clickCell(big, 'axial', 5, 5, size);
      await cancelAfterPatches(big, 'explaining');
      assert.equal(await hookValue<number>(big, 'h.cancelled'), 2);
      await assertStopped(big, 'explaining: patch 64 of 64');
      assert.ok(await big.isHidden('#vol-cancel'));
      assert.match((await big.textContent('#vol-timing')) ?? '', /cancelled/);
      assert.equal(await hookValue<number>(big, 'h.answers'), answers, 'no answer came');
      assert.equal(maxAbsDiff(await floats(big, 'lastHeatmapBase64'), heatBefore), 0, 'the shown heatmap stays');
      assert.deepEqual(await hookValue<VolumeRegion>(big, 'h.state().region'), { kind: 'voxel', voxel: [d, 20, 30] });

      // Usable: the next question is answered, with the library's heatmap.
      await useTool(big, 'voxel');
      assert.equal(await nextAnswer(big, () => clickCell(big, 'axial', 30, 40, size)), 'answer');
      await assertSameAsGrid(big, vol, size, { kind: 'voxel', voxel: [d, 30, 40] });
      assert.equal(await hookValue<string>(big, "document.getElementById('status-text').textContent"), 'ready');
    },
  );

  test('PNG files picked together are the slices of a volume in natural name order, as the CLI reads a slice folder', T, async () => {
    // The fixture volume as 16 grey PNG slices named slice1 … slice16 (slice10 sorts after slice9, not after slice1).
    const dir = mkdtempSync(join(tmpdir(), 'seg-grad-cam-slices-'));
    try {
      const [D, H, W] = dims;
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of volume) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      const files = [];
      for (let d = 0; d < D; d++) {
        const data = new Uint8ClampedArray(H * W * 4);
        for (let i = 0; i < H * W; i++) {
          const g = Math.round((255 * (volume[d * H * W + i] - lo)) / (hi - lo));
          data.set([g, g, g, 255], 4 * i);
        }
        const name = `slice${d + 1}.png`;
        const buffer = Buffer.from(encodePng({ width: W, height: H, data }));
        writeFileSync(join(dir, name), buffer);
        files.push({ name, mimeType: 'image/png', buffer });
      }
      const ref = await readSliceFolder(dir);
      assert.deepEqual(ref.dims, dims);
      // Given in reverse order: the page sorts them.
      await openVolume(big, files.reverse());
      assert.deepEqual((await hookValue<{ volumeDims: number[] }>(big, 'h.state()')).volumeDims, dims);
      assert.equal(maxAbsDiff(await floats(big, 'volumeBase64'), ref.data), 0, 'the same voxels as readSliceFolder');
      assert.match((await big.textContent('#vol-names')) ?? '', /16 PNG slices slice1\.png … slice16\.png/);
      // Grey levels 0..255 are not what the model was trained on: z-score them (the worker keeps the slices as read).
      const n = await hookValue<number>(big, 'h.predictions');
      await big.selectOption('#vol-intensity', 'zscore');
      await big.waitForFunction((k) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > k, n, {
        timeout: 60_000,
      });
      const z = zScore(ref.data);
      assert.ok(maxAbsDiff(await floats(big, 'volumeBase64'), z) <= 1e-6 * maxAbs(z));
      assert.equal(await nextAnswer(big, () => clickCell(big, 'axial', 6, 15)), 'answer');
      const slice = (await hookValue<{ slices: number[] }>(big, 'h.state()')).slices[0];
      await assertSameAsLibrary(big, { kind: 'voxel', voxel: [slice, 6, 15] }, undefined, z);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await big.close();
    assert.deepEqual(pageErrors, []);
  });

  test(
    'a 3-D TF.js LayersModel (model.json + weights) on a volume larger than its input gives the library’s sliding-window answer',
    T,
    async () => {
      const lm = layersUnet();
      const vm = asVolumeModel(new LayersVolumeModel(lm));
      const p = await context.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      try {
        await p.goto(`${server.url}volume.html`);
        await waitReady(p);
        // The model and its weights picked together; the default 16 × 20 × 24 volume: 3 windows per axis of the 8 × 10 × 12 input.
        await openVolume(p, await layersFiles(lm));
        const st = await hookValue<{ model: { name: string; layers: Array<{ name: string; shape: number[] }>; bottleneck: string } }>(
          p,
          'h.state()',
        );
        assert.equal(st.model.name, 'model.json');
        assert.deepEqual(
          st.model.layers.map((l) => [l.name, l.shape]),
          vm.layers().map((l) => [l.name, l.shape]),
        );
        assert.equal(st.model.bottleneck, 'bottleneck');
        assert.ok((await lastProgress(p)).includes('predicting: patch 27 of 27'));
        const d = (await hookValue<{ slices: number[] }>(p, 'h.state()')).slices[0];
        assert.equal(await nextAnswer(p, () => clickCell(p, 'axial', 9, 11)), 'answer');
        const region: VolumeRegion = { kind: 'voxel', voxel: [d, 9, 11] };
        const ref = await explainVolumeGrid(vm, volume, dims, { region });
        assert.ok(ref.patches.touched > 1, JSON.stringify(ref.patches));
        const got = await hookValue<GridPageAnswer>(
          p,
          '(({ layer, method, classId, score, alpha, sliding }) => ({ layer, method, classId, score, alpha: [...alpha], sliding }))(h.lastAnswer)',
        );
        assert.equal(got.layer, ref.layer);
        assert.equal(got.classId, ref.classId);
        assert.deepEqual(got.sliding, {
          total: ref.patches.total,
          touched: ref.patches.touched,
          skipped: ref.patches.skipped,
          forwardRuns: 0,
        });
        assert.ok(maxAbs(ref.cam) > 0, 'the reference heatmap is not all zero (the comparison can fail)');
        const heat = await floats(p, 'lastHeatmapBase64');
        assert.ok(
          maxAbsDiff(heat, ref.cam) <= 1e-4 * maxAbs(ref.cam),
          `heatmap off by ${maxAbsDiff(heat, ref.cam)} (max ${maxAbs(ref.cam)})`,
        );
        assert.ok(maxAbsDiff(got.alpha, ref.alpha) <= 1e-4 * maxAbs(ref.alpha), `α off by ${maxAbsDiff(got.alpha, ref.alpha)}`);
        assert.ok(Math.abs(got.score - ref.score) <= 1e-4 * Math.max(1, Math.abs(ref.score)), `S ${got.score} vs ${ref.score}`);
      } finally {
        await p.close();
        lm.dispose();
      }
      assert.deepEqual(pageErrors, []);
    },
  );

  test(
    'a model with free input sizes reads the whole volume in one run, or sliding windows at the Patch given (as openVolumeModel opens it)',
    T,
    async () => {
      const modelPath = new URL('models/volume-synthetic/model.onnx', repo);
      const samplePath = new URL('models/volume-synthetic/sample.nii.gz', repo);
      const bytes = readFileSync(modelPath);
      const sample = await readNiftiFile(samplePath.pathname);
      const size: Dims3 = [sample.dims[2], sample.dims[1], sample.dims[0]];
      const patch: Dims3 = [16, 20, 24];
      const m = await openVolumeModel(bytes, nodeRuntime, size, { patch });
      const p = await context.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      try {
        await p.goto(`${server.url}volume.html`);
        await waitReady(p);
        assert.ok(await p.isDisabled('#vol-patch'), 'the fixture model has fixed sizes: no patch to choose');
        await clearProgress(p);
        await openVolume(p, [
          { name: 'model.onnx', mimeType: 'application/octet-stream', buffer: bytes },
          { name: 'sample.nii.gz', mimeType: 'application/gzip', buffer: readFileSync(samplePath) },
        ]);
        assert.ok(await p.isEnabled('#vol-patch'));
        assert.ok(!(await lastProgress(p)).some((l) => /patch \d+ of/.test(l)), 'one run over the whole volume');
        // Patch 16,20,24 over the 32 × 40 × 48 sample: three windows per axis.
        const n = await hookValue<number>(p, 'h.predictions');
        await p.fill('#vol-patch', '16,20,24');
        await p.dispatchEvent('#vol-patch', 'change');
        await p.waitForFunction((k) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > k, n, {
          timeout: 120_000,
        });
        assert.ok((await lastProgress(p)).includes('predicting: patch 27 of 27'));
        const st = await hookValue<{ model: { layers: Array<{ name: string; shape: number[] }> } }>(p, 'h.state()');
        assert.deepEqual(
          st.model.layers.map((l) => [l.name, l.shape]),
          m.layers().map((l) => [l.name, l.shape]),
          'the layers at the patch size',
        );
        const d = (await hookValue<{ slices: number[] }>(p, 'h.state()')).slices[0];
        assert.equal(await nextAnswer(p, () => clickCell(p, 'axial', 20, 24, size)), 'answer');
        const ref = await assertSameAsGrid(p, sample.data, size, { kind: 'voxel', voxel: [d, 20, 24] }, undefined, m);
        assert.ok(ref.patches.touched > 1, JSON.stringify(ref.patches));
        assert.match(p.url(), /patch=16%2C20%2C24|patch=16,20,24/);
      } finally {
        await p.close();
        await m.dispose();
      }
      assert.deepEqual(pageErrors, []);
    },
  );
});
