/**
 * Benchmark (not a test): time from a click to the drawn heatmap in headless Chromium, for every
 * bundled model, first click and later clicks, and which backend ran.
 *
 *   node --import tsx web/bench.ts [--clicks 6] [--backends auto,webgl] [--models id,id] [--no-build]
 */
import { canvasGeometry, clickPixel, hookValue, nextAnswer, startExplorer, waitReady } from './e2e-harness.js';
import { machineLine, median } from '../bench/timing.js';
import { probeText, type BackendReport } from './src/protocol.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const clicks = Number(opt('clicks', '6'));
const backends = opt('backends', 'auto').split(',');
const only = opt('models', '').split(',').filter(Boolean);

const { catalog, url, browser, close } = await startExplorer(args);
process.stdout.write(`${machineLine()}; headless Chromium\n`);

try {
  for (const backend of backends) {
    for (const model of catalog.models.filter((m) => only.length === 0 || only.includes(m.id))) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      const q = new URLSearchParams({ model: model.id, image: model.samples[0], ...(backend !== 'auto' ? { backend } : {}) });
      const t0 = Date.now();
      await page.goto(`${url}?${q}`);
      await waitReady(page, 300_000);
      const ready = Date.now() - t0;
      const report = await hookValue<BackendReport>(page, 'h.backend');
      // What ran the model: the TF.js backend, or onnxruntime-web for an ONNX model.
      const engine = await hookValue<string>(page, 'h.state().engine');
      const forward = await page.textContent('#timing');
      const { width, height } = await canvasGeometry(page, '#view-image');
      for (let i = 0; i < clicks; i++) {
        const x = Math.floor(width * (0.15 + 0.7 * ((i * 0.37) % 1)));
        const y = Math.floor(height * (0.15 + 0.7 * ((i * 0.61 + 0.3) % 1)));
        if ((await nextAnswer(page, () => clickPixel(page, '#view-image', x, y), 300_000)) !== 'answer') {
          throw new Error(`no answer: ${await hookValue<string>(page, 'h.lastError')}`);
        }
      }
      const t = await hookValue<Array<{ ms: number; wallMs: number; layer: string }>>(page, 'h.timings');
      const later = t.slice(1);
      const probes = report.probes.map((p) => probeText(p, 0)).join('; ');
      process.stdout.write(
        `${model.id} [${backend}] backend=${engine}${engine !== report.backend ? ` (TF.js on ${report.backend})` : ''}${probes ? ` (probe: ${probes})` : ''}\n` +
          `  page ready (backend, model, image, forward) ${ready} ms; ${forward}\n` +
          `  layer ${t[0].layer}: first click ${t[0].wallMs.toFixed(0)} ms (worker ${t[0].ms.toFixed(0)} ms); ` +
          `later clicks median ${median(later.map((x) => x.wallMs)).toFixed(0)} ms (worker ${median(later.map((x) => x.ms)).toFixed(0)} ms), ` +
          `min ${Math.min(...later.map((x) => x.wallMs)).toFixed(0)}, max ${Math.max(...later.map((x) => x.wallMs)).toFixed(0)} ms over ${later.length}\n`,
      );
      await context.close();
    }
  }
} finally {
  await close();
}
