/** Sharing: the view in the URL, the figure PNG and the heatmap + α JSON. */
import { explanationFigure } from '../../../src/figure.js';
import { explanationJson } from '../../../src/io/json.js';
import { putImage } from '../ui/stage.js';
import { type ViewState, encodeState } from '../url-state.js';
import { el } from './elements.js';
import { currentTool } from './pointer.js';
import { className, colormap, engine, imageName, layer, modelName, opacity, state } from './state.js';
import { showError } from './status.js';

export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function exportPng(): void {
  const e = state.explanation;
  const img = state.image;
  if (!e || !img) return showError(new Error('nothing to export yet: ask a question first'));
  const r = e.region;
  const marker = r.kind === 'pixel' || r.kind === 'object' ? ([r.x, r.y] as [number, number]) : undefined;
  const names = state.info ? Array.from({ length: state.info.classCount }, (_, c) => className(c)) : undefined;
  const fig = explanationFigure(
    img,
    { ...e, className: className(e.classIndex) },
    { colormap: colormap(), opacity: opacity(), marker, classNames: names },
  );
  const canvas = document.createElement('canvas');
  putImage(canvas, fig);
  canvas.toBlob((blob) => blob && download(blob, `seg-grad-cam-${e.layer.name}-class${e.classIndex}.png`), 'image/png');
}

export function exportJson(): void {
  const e = state.explanation;
  if (!e) return showError(new Error('nothing to export yet: ask a question first'));
  const json = explanationJson(
    { ...e, className: className(e.classIndex) },
    {
      model: modelName() ?? '',
      image: imageName() ?? '',
      region: e.region,
      runtime: engine(),
      ms: e.ms,
      heatmap: true,
    },
  );
  download(new Blob([JSON.stringify(json) + '\n'], { type: 'application/json' }), `seg-grad-cam-${e.layer.name}-class${e.classIndex}.json`);
}

export function viewState(): ViewState {
  const e = state.explanation;
  const r = e?.region;
  const classParam = state.classChoice ?? (r?.kind === 'class' ? e?.classIndex : undefined);
  return {
    model: state.model?.key ?? undefined,
    labels: state.model?.key?.startsWith('url:') && state.model.source.kind === 'url' ? state.model.source.labelsUrl : undefined,
    image: state.imageEntry?.key ?? undefined,
    layer: state.info && layer() !== state.info.bottleneck ? layer() : undefined,
    class: classParam,
    tool: currentTool() !== 'pixel' ? currentTool() : undefined,
    region: r,
    method: el.methodSelect.value !== 'seg-grad-cam' ? el.methodSelect.value : undefined,
    score: el.scoreSelect.value !== 'logits' ? (el.scoreSelect.value as 'probability') : undefined,
    colormap: colormap() !== 'turbo' ? colormap() : undefined,
    opacity: opacity() !== 0.55 ? opacity() : undefined,
    backend: el.backendSelect.value !== 'auto' ? el.backendSelect.value : undefined,
    negative: el.negativeToggle.checked ? true : undefined,
    contrast: el.contrastSelect.value !== 'none' && el.contrastSelect.value !== '' ? Number(el.contrastSelect.value) : undefined,
    normalize: el.normalizeSelect.value === 'minmax' ? 'minmax' : undefined,
  };
}

export function updateUrl(): void {
  const q = encodeState(viewState());
  const url = `${location.pathname}${q ? `?${q}` : ''}`;
  if (url !== `${location.pathname}${location.search}`) history.replaceState(null, '', url);
}
