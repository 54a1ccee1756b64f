/**
 * What the end-to-end tests and the benchmark share: build the explorer once, serve it on
 * 127.0.0.1, and drive Debian's chromium with playwright-core (headless, no sandbox, and flags
 * that keep it from trying the network, which is closed here).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { Catalog } from './bundled.js';
import { serve } from './serve.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why the browser tests cannot run here (null when they can). */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} not found: install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH)`;
}

export const webDir = fileURLToPath(new URL('.', import.meta.url));

/** Builds web/ into web/dist (the same as `npm run build:web` without the type check). */
export async function buildWeb(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: fileURLToPath(new URL('./vite.config.ts', import.meta.url)), logLevel: 'warn' });
}

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** The bundled models and samples of the last build (web/dist/catalog.json). */
export function readCatalog(): Catalog {
  return JSON.parse(readFileSync(join(webDir, 'dist', 'catalog.json'), 'utf8')) as Catalog;
}

/**
 * What the scripts (web/bench.ts, web/screenshot.ts) start with: chromium (else a message and
 * exit code 2), a fresh build unless `--no-build` is among `args`, the catalog, the served app
 * and the browser. `close` stops the last two.
 */
export async function startExplorer(args: string[]): Promise<{ catalog: Catalog; url: string; browser: Browser; close(): Promise<void> }> {
  const missing = chromiumMissing();
  if (missing) {
    process.stderr.write(`${missing}\n`);
    process.exit(2);
  }
  if (!args.includes('--no-build')) await buildWeb();
  const catalog = readCatalog();
  const server = await serve();
  const browser = await launchBrowser();
  return {
    catalog,
    url: server.url,
    browser,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** The page's test hook (window.__segGradCam), typed loosely for page.evaluate. */
export interface Hook {
  ready: boolean;
  answers: number;
  errors: number;
  lastError: string | null;
  gridDone: number;
  timings: Array<{ ms: number; wallMs: number; cached: boolean; layer: string }>;
}

export const hookValue = <T>(page: Page, fn: string): Promise<T> =>
  page.evaluate(`(() => { const h = window.__segGradCam; return ${fn}; })()`) as Promise<T>;

/** Waits until the page booted (backend, model, image, and any question from the URL). */
export async function waitReady(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForFunction(() => (window as unknown as { __segGradCam?: Hook }).__segGradCam?.ready === true, null, {
    timeout,
    polling: 50,
  });
}

/** Runs an action and waits for the next answer (or error); returns which came. */
export async function nextAnswer(page: Page, action: () => Promise<unknown>, timeout = 120_000): Promise<'answer' | 'error'> {
  const [answers, errors] = await page.evaluate(() => {
    const h = (window as unknown as { __segGradCam: Hook }).__segGradCam;
    return [h.answers, h.errors];
  });
  await action();
  await page.waitForFunction(
    ([a, e]) => {
      const h = (window as unknown as { __segGradCam: Hook }).__segGradCam;
      return h.answers > a || h.errors > e;
    },
    [answers, errors],
    { timeout, polling: 50 },
  );
  return page.evaluate((a) => ((window as unknown as { __segGradCam: Hook }).__segGradCam.answers > a ? 'answer' : 'error'), answers);
}

/** Clicks an image pixel of a panel's canvas (image coordinates). */
export async function clickPixel(page: Page, canvas: string, x: number, y: number, modifiers: Array<'Shift'> = []): Promise<void> {
  const { left, top, scaleX, scaleY } = await canvasGeometry(page, canvas);
  for (const m of modifiers) await page.keyboard.down(m);
  await page.mouse.click(left + (x + 0.5) * scaleX, top + (y + 0.5) * scaleY);
  for (const m of modifiers) await page.keyboard.up(m);
}

/** Drags from one image pixel to another on a panel's canvas. */
export async function dragPixels(page: Page, canvas: string, from: [number, number], to: [number, number], shift = false): Promise<void> {
  const { left, top, scaleX, scaleY } = await canvasGeometry(page, canvas);
  const at = ([x, y]: [number, number]) => [left + (x + 0.5) * scaleX, top + (y + 0.5) * scaleY] as const;
  if (shift) await page.keyboard.down('Shift');
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at(to), { steps: 6 });
  await page.mouse.up();
  if (shift) await page.keyboard.up('Shift');
}

export async function canvasGeometry(
  page: Page,
  canvas: string,
): Promise<{ left: number; top: number; scaleX: number; scaleY: number; width: number; height: number }> {
  await page.locator(canvas).scrollIntoViewIfNeeded();
  return page.$eval(canvas, (c) => {
    const el = c as HTMLCanvasElement;
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, scaleX: r.width / el.width, scaleY: r.height / el.height, width: el.width, height: el.height };
  });
}

/** A digest of a canvas's pixels (a hash of the RGBA bytes, their size and sum): cheap to compare. */
export function canvasDigest(page: Page, canvas: string): Promise<{ hash: number; width: number; height: number; sum: number }> {
  return page.$eval(canvas, (c) => {
    const el = c as HTMLCanvasElement;
    const ctx = el.getContext('2d') as CanvasRenderingContext2D;
    const data = ctx.getImageData(0, 0, el.width, el.height).data;
    let hash = 2166136261;
    let sum = 0;
    for (let i = 0; i < data.length; i++) {
      hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
      sum += data[i];
    }
    return { hash, width: el.width, height: el.height, sum };
  });
}

/** The page's last heatmap (window.__segGradCam.lastHeatmap), carried out as base64 float32 bytes. */
export async function lastHeatmap(page: Page): Promise<Float32Array> {
  const b64 = await page.evaluate(() =>
    (window as unknown as { __segGradCam: { lastHeatmapBase64(): string | null } }).__segGradCam.lastHeatmapBase64(),
  );
  if (b64 === null) throw new Error('the page has no heatmap yet');
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
