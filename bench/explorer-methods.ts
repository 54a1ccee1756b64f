/**
 * Benchmark (not a test): the explorer's click-to-heatmap time per method on the bundled U-Net, in headless Chromium.
 * One fresh page per method (`?method=…`, so no answer is recomputed when the method changes), then `--clicks` clicks
 * (default 3) at fixed pixels; prints per method the median wall time from the click to the drawn heatmap, the
 * worker's own time and the page's timing line, with the machine and its load.
 *
 *   node --import tsx bench/explorer-methods.ts [--clicks 3] [--methods seg-grad-cam,shapley-cam,…] [--model id] [--no-build]
 *
 * Methods the model cannot run (greyed in the page) are listed as such. Default method options throughout (RISE 1000
 * masks, KernelSHAP 2·M + 2048 coalitions, Ablation-CAM every channel: those take tens of seconds per click).
 */
import { canvasGeometry, clickPixel, hookValue, nextAnswer, startExplorer, waitReady } from '../web/e2e-harness.js';
import { machineLine, median } from './timing.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const clicks = Math.max(1, Number(opt('clicks', '3')));
const only = opt('methods', '').split(',').filter(Boolean);

const { catalog, url, browser, close } = await startExplorer(args);
const model = opt('model', catalog.models[0].id);
process.stdout.write(`${machineLine()}; headless Chromium; model ${model}; ${clicks} clicks per method\n`);
process.stdout.write('method | median click→heatmap ms | worker ms | min–max ms | timing line\n');

try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const probe = await context.newPage();
  await probe.goto(`${url}?${new URLSearchParams({ model })}`);
  await waitReady(probe, 300_000);
  const methods = await probe.$$eval('#method-select option', (os) =>
    os.map((o) => ({
      name: (o as HTMLOptionElement).value,
      disabled: (o as HTMLOptionElement).disabled,
      why: (o as HTMLOptionElement).title,
    })),
  );
  await probe.close();
  for (const m of methods.filter((x) => only.length === 0 || only.includes(x.name))) {
    if (m.disabled) {
      process.stdout.write(`${m.name} | not for this model (${m.why}) | | |\n`);
      continue;
    }
    const page = await context.newPage();
    await page.goto(`${url}?${new URLSearchParams({ model, method: m.name })}`);
    await waitReady(page, 300_000);
    const { width, height } = await canvasGeometry(page, '#view-image');
    let failed = '';
    for (let i = 0; i < clicks && !failed; i++) {
      const x = Math.floor(width * (0.3 + 0.4 * ((i * 0.37) % 1)));
      const y = Math.floor(height * (0.3 + 0.4 * ((i * 0.61 + 0.3) % 1)));
      if ((await nextAnswer(page, () => clickPixel(page, '#view-image', x, y), 600_000)) !== 'answer')
        failed = (await hookValue<string>(page, 'h.lastError')) ?? 'error';
    }
    if (failed) process.stdout.write(`${m.name} | error: ${failed} | | |\n`);
    else {
      const t = (await hookValue<Array<{ ms: number; wallMs: number }>>(page, 'h.timings')).slice(-clicks);
      const wall = t.map((x) => x.wallMs);
      const line = ((await page.textContent('#timing')) ?? '').replace(/\s+/g, ' ').trim();
      process.stdout.write(
        `${m.name} | ${median(wall).toFixed(0)} | ${median(t.map((x) => x.ms)).toFixed(0)} | ${Math.min(...wall).toFixed(0)}–${Math.max(...wall).toFixed(0)} | ${line}\n`,
      );
    }
    await page.close();
  }
  await context.close();
  process.stdout.write(`${machineLine()} (at the end)\n`);
} finally {
  await close();
}
