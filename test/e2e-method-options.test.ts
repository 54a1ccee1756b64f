/**
 * The explorer's method options in headless Chromium: the negative checkbox is disabled (with the reason on hover, and
 * cleared) for methods without a negative map, the contrast list for methods whose map does not depend on the class;
 * the new methods are in the list, ShapleyCAM greyed on the ONNX model (no second derivatives there). Skipped with a
 * message when chromium is missing, unless CI is set.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Catalog } from '../web/bundled.js';
import {
  buildWeb,
  canvasGeometry,
  chromiumMissing,
  clickPixel,
  hookValue,
  launchBrowser,
  nextAnswer,
  readCatalog,
  waitReady,
} from '../web/e2e-harness.js';
import { serve } from '../web/serve.js';

const missing = chromiumMissing();
const ci = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());
if (missing && ci) throw new Error(`the end-to-end tests must run in CI: ${missing}`);
const T = { timeout: 900_000, skip: missing ? `end-to-end tests skipped: ${missing}` : false };
const POLL = { polling: 50, timeout: 600_000 };

let browser: Browser;
let server: Awaited<ReturnType<typeof serve>>;
let catalog: Catalog;
const pageErrors: string[] = [];

async function newPage(): Promise<Page> {
  const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  p.on('pageerror', (e) => pageErrors.push(e.message));
  // wasm named: no backend timing at start (minutes on a loaded machine); the page's choice is not under test here.
  await p.goto(`${server.url}?backend=wasm`);
  await waitReady(p, 600_000);
  return p;
}

/** The next answer or error, waiting long (a loaded machine). */
const next = (p: Page, action: () => Promise<unknown>) => nextAnswer(p, action, 600_000);

const option = (p: Page, value: string) =>
  p.$eval(`#method-select option[value="${value}"]`, (o) => ({
    disabled: (o as HTMLOptionElement).disabled,
    title: (o as HTMLOptionElement).title,
  }));

describe('the explorer: options a method does not have', () => {
  before(async () => {
    if (missing) return;
    await buildWeb();
    catalog = readCatalog();
    server = await serve({});
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    assert.deepEqual(pageErrors, []);
  });

  test(
    'negative is disabled with the reason (and cleared) for a method without a negative map; contrast for a class-free map',
    T,
    async () => {
      const p = await newPage();
      const { width, height } = await canvasGeometry(p, '#view-image');
      assert.equal(await next(p, () => clickPixel(p, '#view-image', Math.floor(width * 0.4), Math.floor(height * 0.5))), 'answer');
      assert.equal(await p.isEnabled('#negative-toggle'), true);
      assert.equal(await next(p, () => p.check('#negative-toggle')), 'answer');
      assert.match(p.url(), /[?&]negative=1(&|$)/);

      // saliency has no negative map: it answers (no error), the checkbox is off and disabled, the reason on hover.
      assert.equal(await next(p, () => p.selectOption('#method-select', 'saliency')), 'answer');
      assert.equal(await p.isDisabled('#negative-toggle'), true);
      assert.equal(await p.isChecked('#negative-toggle'), false);
      assert.match((await p.getAttribute('#negative-toggle', 'title')) ?? '', /saliency has no negative map/);
      assert.match(
        (await p.$eval('#negative-toggle', (c) => (c.closest('label') as HTMLElement).title)) ?? '',
        /saliency has no negative map/,
      );
      assert.equal((await hookValue<{ negative?: boolean }>(p, 'h.lastExplanation')).negative ?? false, false);
      assert.doesNotMatch(p.url(), /[?&]negative=1(&|$)/);
      assert.equal(await p.isEnabled('#contrast-select'), true);

      // Eigen-CAM's map does not depend on the class: the contrast list is disabled with the reason.
      assert.equal(await next(p, () => p.selectOption('#method-select', 'eigen-cam')), 'answer');
      assert.equal(await p.isDisabled('#contrast-select'), true);
      assert.match((await p.getAttribute('#contrast-select', 'title')) ?? '', /does not depend on the class/);

      // Back to a method that has both: enabled again, the label's own title restored.
      assert.equal(await next(p, () => p.selectOption('#method-select', 'seg-grad-cam')), 'answer');
      assert.equal(await p.isEnabled('#negative-toggle'), true);
      assert.equal(await p.isEnabled('#contrast-select'), true);
      assert.match((await p.$eval('#negative-toggle', (c) => (c.closest('label') as HTMLElement).title)) ?? '', /what speaks against/);
      assert.equal(await next(p, () => p.check('#negative-toggle')), 'answer');
      assert.equal((await hookValue<{ negative?: boolean }>(p, 'h.lastExplanation')).negative, true);
      await p.close();
    },
  );

  test('shapley-cam and kernel-shap are in the list; shapley-cam is greyed with the reason on the ONNX model', T, async () => {
    const p = await newPage();
    for (const m of ['shapley-cam', 'kernel-shap']) assert.equal((await option(p, m)).disabled, false, m);
    const onnx = catalog.models.find((m) => m.format === 'onnx');
    assert.ok(onnx, 'the build bundles the ONNX U-Net');
    const predictions = await hookValue<number>(p, 'h.predictions');
    await p.selectOption('#model-select', onnx.id);
    await p.waitForFunction(
      (n) => (window as unknown as { __segGradCam: { predictions: number } }).__segGradCam.predictions > n,
      predictions,
      POLL,
    );
    const shapley = await option(p, 'shapley-cam');
    assert.equal(shapley.disabled, true);
    assert.match(shapley.title, /second derivatives/);
    assert.equal((await option(p, 'kernel-shap')).disabled, false);
    await p.close();
  });
});
