/** Drawing the heatmap overlay and the marks (region, contour of M, markers) on the panels. */
import { overlayHeatmap } from '../../../src/render/index.js';
import { stages } from './elements.js';
import { colormap, opacity, state } from './state.js';

export function renderOverlay(): void {
  const img = state.image;
  const e = state.explanation;
  if (!img) return;
  if (!e || e.width !== img.width || e.height !== img.height) {
    stages.overlay.show(img);
    return;
  }
  stages.overlay.show(overlayHeatmap(img, e.heatmap, { colormap: colormap(), opacity: opacity() }));
}

/** Region, contour of M and markers on the three panels. */
export function drawMarks(hover?: { mask: Uint8Array; w: number; h: number }): void {
  const img = state.image;
  for (const stage of Object.values(stages)) {
    const ctx = stage.clearMarks();
    if (!img) continue;
    const e = state.explanation;
    const r = state.region;
    if (hover && stage === stages.image) stage.fill(ctx, hover.mask, hover.w, hover.h, 'rgba(255,181,71,0.35)');
    if (e && r === e.region) stage.contour(ctx, e.regionMask, e.prediction.width, e.prediction.height, '#ffffff');
    if (state.brush && stage !== stages.prediction) stage.fill(ctx, state.brush, img.width, img.height, 'rgba(255,255,255,0.35)');
    if (!r) continue;
    if (r.kind === 'pixel' || r.kind === 'object') stage.marker(ctx, r.x, r.y);
    else if (r.kind === 'pixels') for (const [x, y] of r.points) stage.marker(ctx, x, y);
    else if (r.kind === 'box') stage.box(ctx, r.x0, r.y0, r.x1, r.y1);
    else if (r.kind === 'mask' && r !== e?.region) stage.fill(ctx, r.mask, r.width, r.height, 'rgba(255,255,255,0.3)');
  }
}
