/** The image: samples, decoding, its one forward pass (the prediction) and the legend. */
import type { RgbaImage } from '../../../src/image.js';
import { classColor, colormapLut, labelImage, lutIndex, resizeLabelsNearest } from '../../../src/render/index.js';
import { DecodeError, decodeImage, fetchImage } from '../image-decode.js';
import { ask, classCounts } from './ask.js';
import { call } from './backend.js';
import { el, stages } from './elements.js';
import { hook } from './hook.js';
import { clearGrid } from './layer-grid.js';
import { updateUrl } from './share.js';
import { type ImageEntry, type ImageSource, className, colormap, palette, state } from './state.js';
import { clearError, showError } from './status.js';
import { drawMarks } from './view.js';

export function fillImageSelect(): void {
  el.imageSelect.innerHTML = '';
  const model = state.catalog.models.find((m) => m.id === state.model?.key);
  const suited = new Set(model?.samples ?? []);
  const ordered = [...state.catalog.samples].sort((a, b) => Number(suited.has(b.url)) - Number(suited.has(a.url)));
  for (const s of ordered) el.imageSelect.add(new Option(s.name, s.url));
  const custom = new Option('(your image)', '', false, false);
  custom.disabled = true;
  el.imageSelect.add(custom);
  syncImageSelect();
}

export function syncImageSelect(): void {
  const key = state.imageEntry?.key;
  const found = state.catalog.samples.some((s) => s.url === key);
  if (found) el.imageSelect.value = key as string;
  else el.imageSelect.selectedIndex = el.imageSelect.options.length - 1;
}

/** An image's pixels, or null (the error shown) when it cannot be read. */
export async function loadImage(src: ImageSource): Promise<RgbaImage | null> {
  clearError();
  try {
    return await src.load();
  } catch (err) {
    showError(err instanceof DecodeError ? err : new Error(`cannot open the image: ${(err as Error).message}`));
    syncImageSelect();
    return null;
  }
}

export async function openImage(src: ImageSource): Promise<boolean> {
  const img = await loadImage(src);
  return img ? showImage(img, src.entry) : false;
}

/** Makes an image the current one, shows it and predicts it. */
export function showImage(img: RgbaImage, entry: ImageEntry): Promise<boolean> {
  state.image = img;
  state.imageEntry = entry;
  state.region = null;
  state.explanation = null;
  clearGrid();
  syncImageSelect();
  stages.image.show(img);
  stages.overlay.show(img);
  drawMarks();
  return predict();
}

/** What the answer line says when the image is ready and nothing is asked. */
export const ASK_PROMPT = 'Click a pixel of the image (shift-click adds pixels), drag a box, or paint with the brush.';

/** Sends the image to the worker: its one forward pass, and the prediction. */
export async function predict(): Promise<boolean> {
  const img = state.image;
  if (!img || !state.info) return false;
  try {
    const data = img.data.slice();
    const reply = await call('forward pass', { type: 'set-image', width: img.width, height: img.height, data }, 'set-image', {
      transfer: [data.buffer],
    });
    if (!reply || state.image !== img) return false;
    state.prediction = reply.prediction;
    hook.predictions++;
  } catch (err) {
    showError(err);
    return false;
  }
  renderPrediction();
  stages.overlay.show(img);
  el.answer.textContent = ASK_PROMPT;
  el.timing.textContent = `forward pass ${Math.round(state.prediction.ms)} ms (once per image and model)`;
  updateUrl();
  return true;
}

export function renderPrediction(): void {
  const p = state.prediction;
  const img = state.image;
  if (!p || !img) return;
  const pal = palette();
  const onImage = resizeLabelsNearest(p.labels, p.width, p.height, img.width, img.height);
  stages.prediction.show(labelImage(onImage, img.width, img.height, pal));
  // Legend: the classes present, most frequent first; a click picks the class.
  el.legend.innerHTML = '';
  for (const [c, n] of classCounts(p.labels)) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.class = String(c);
    b.title = `${className(c)}: ${((100 * n) / p.labels.length).toFixed(1)}% of the output; click to explain all its pixels`;
    const sw = document.createElement('i');
    const [r, g, bl] = classColor(pal, c);
    sw.style.background = `rgb(${r},${g},${bl})`;
    b.append(sw, className(c));
    b.addEventListener('click', () => {
      // Once: every pixel of this class; later clicks go back to the class list's choice.
      void ask({ kind: 'class' }, c);
    });
    el.legend.append(b);
  }
  drawMarks();
}

export function renderColorbar(): void {
  const lut = colormapLut(colormap());
  const stops: string[] = [];
  for (let i = 0; i <= 8; i++) {
    const j = lutIndex(i / 8) * 3;
    stops.push(`rgb(${lut[j]},${lut[j + 1]},${lut[j + 2]}) ${(i / 8) * 100}%`);
  }
  el.colorbar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  el.colorbar.title = `${colormap()}: 0 (left) to the maximum (right)`;
}

export function imageFromKey(key: string | null): ImageSource | null {
  if (key === null) return null;
  const url = key.startsWith('url:') ? key.slice(4) : state.catalog.samples.some((s) => s.url === key) ? key : null;
  if (!url) return null;
  return { load: () => fetchImage(url), entry: { key, name: url.split('/').pop() ?? url } };
}

/** A sample suited to the current model. */
export function defaultImageKey(): string | null {
  const m = state.catalog.models.find((c) => c.id === state.model?.key);
  return m?.samples[0] ?? state.catalog.samples[0]?.url ?? null;
}

/** An image the user chose (a file, dropped or picked). */
export const fileImage = (f: File): ImageSource => ({ load: () => decodeImage(f, f.name), entry: { key: null, name: f.name } });
