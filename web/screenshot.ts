/**
 * Takes the explorer's screenshot for the docs (docs/images/explorer.png): the default model, a
 * class region explained at the bottleneck, the layer grid, and α of a background pixel against it.
 *
 *   node --import tsx web/screenshot.ts [out.png] [--model id] [--layer name] [--no-build]
 */
import { join } from 'node:path';
import { canvasGeometry, clickPixel, hookValue, nextAnswer, startExplorer, waitReady, webDir } from './e2e-harness.js';

const args = process.argv.slice(2);
const out =
  args.find((a) => !a.startsWith('--') && !['--model', '--layer'].includes(args[args.indexOf(a) - 1])) ??
  join(webDir, '..', 'docs', 'images', 'explorer.png');
const modelArg = args.includes('--model') ? args[args.indexOf('--model') + 1] : undefined;
const layerArg = args.includes('--layer') ? args[args.indexOf('--layer') + 1] : undefined;

/**
 * Per model: a background pixel for α_A (fractions of the image), the class whose pixels are B,
 * and the layer (the trained U-Net's CAM for digit 3 is zero at its 4x4 bottleneck: the first
 * decoder block shows more).
 */
const SCENES: Record<string, { a: [number, number]; className: string; layer?: string }> = {
  'unet-biased': { a: [0.08, 0.12], className: 'digit 3', layer: 'dec4_relu2' },
  'unet-unbiased': { a: [0.08, 0.12], className: 'digit 3', layer: 'dec4_relu2' },
  selfie: { a: [0.12, 0.1], className: 'person' },
};

const { catalog, url, browser, close } = await startExplorer(args);
try {
  const model = catalog.models.find((m) => m.id === (modelArg ?? catalog.models[0]?.id));
  if (!model) throw new Error(`no such bundled model: ${modelArg}`);
  const scene = SCENES[model.id] ?? { a: [0.1, 0.1], className: '1' };
  const layer = layerArg ?? scene.layer;
  const page = await browser.newPage({ viewport: { width: 1440, height: 1120 }, deviceScaleFactor: 1 });
  await page.goto(`${url}?${new URLSearchParams({ model: model.id, image: model.samples[0], ...(layer ? { layer } : {}) })}`);
  await waitReady(page, 300_000);
  const { width, height } = await canvasGeometry(page, '#view-image');
  // α_A: a background pixel.
  await nextAnswer(page, () => clickPixel(page, '#view-image', Math.floor(width * scene.a[0]), Math.floor(height * scene.a[1])));
  await page.click('#pin-a');
  // B: every pixel of the class, via the class form.
  const value = await page.$$eval(
    '#class-select option',
    (os, name) => os.find((o) => o.textContent?.endsWith(` · ${name}`))?.getAttribute('value') ?? null,
    scene.className,
  );
  if (value === null) throw new Error(`no class '${scene.className}'`);
  await nextAnswer(page, () => page.selectOption('#class-select', value));
  await nextAnswer(page, () => page.click('#class-region'));
  // The grid at the layers where the resolution changes.
  await page.check('#layer-grid-filter');
  await page.click('#layer-grid-run');
  await page.waitForFunction(() => /layers in/.test(document.getElementById('layer-grid-status')?.textContent ?? ''), null, {
    timeout: 300_000,
    polling: 100,
  });
  // Hover a heatmap pixel so the readout shows a value.
  const g = await canvasGeometry(page, '#view-overlay');
  await page.mouse.move(g.left + g.width * g.scaleX * 0.55, g.top + g.height * g.scaleY * 0.45);
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    window.scrollTo(0, 0);
  });
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`wrote ${out} (${model.id}; ${await hookValue<string>(page, 'h.backend.backend')})\n`);
} finally {
  await close();
}
