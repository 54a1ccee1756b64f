/** Pointer input on the panels: click, shift-click, box, brush, object, class; the hover readout. */
import { type Region, connectedComponent, toOutputCell } from '../../../src/region/region.js';
import { Stage } from '../ui/stage.js';
import { ask, classAt } from './ask.js';
import { el, stages } from './elements.js';
import { type Tool, className, state } from './state.js';
import { drawMarks } from './view.js';

export function currentTool(): Tool {
  return (document.querySelector('input[name="tool"]:checked') as HTMLInputElement | null)?.value as Tool;
}

let drag: { stage: Stage; x0: number; y0: number; moved: boolean } | null = null;

export function paint(x: number, y: number): void {
  const img = state.image;
  if (!img || !state.brush) return;
  const r = Number(el.brushSize.value) * Math.max(1, Math.round(Math.max(img.width, img.height) / 128));
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (dx * dx + dy * dy > r * r) continue;
      const px = x + dx;
      const py = y + dy;
      if (px >= 0 && py >= 0 && px < img.width && py < img.height) state.brush[py * img.width + px] = 1;
    }
  }
}

export function onPointerDown(stage: Stage, event: PointerEvent): void {
  if (event.button !== 0 || !state.image || !state.prediction || !stage.inside(event)) return;
  const [x, y] = stage.pixelAt(event);
  const tool = currentTool();
  stage.base.setPointerCapture(event.pointerId);
  if (tool === 'box') {
    drag = { stage, x0: x, y0: y, moved: false };
    state.region = { kind: 'box', x0: x, y0: y, x1: x, y1: y };
    drawMarks();
  } else if (tool === 'brush') {
    const img = state.image;
    const keep = event.shiftKey && state.region?.kind === 'mask' ? state.region.mask.slice() : null;
    state.brush = keep ?? new Uint8Array(img.width * img.height);
    drag = { stage, x0: x, y0: y, moved: false };
    paint(x, y);
    drawMarks();
  }
}

export function onPointerMove(stage: Stage, event: PointerEvent): void {
  readout(stage, event);
  if (drag && drag.stage === stage) {
    const [x, y] = stage.pixelAt(event);
    drag.moved = true;
    if (currentTool() === 'box') {
      state.region = { kind: 'box', x0: drag.x0, y0: drag.y0, x1: x, y1: y };
      drawMarks();
    } else if (currentTool() === 'brush') {
      // Fill the gap from the last point so fast strokes stay connected.
      const steps = Math.max(Math.abs(x - drag.x0), Math.abs(y - drag.y0));
      for (let i = 1; i <= steps; i++)
        paint(Math.round(drag.x0 + ((x - drag.x0) * i) / steps), Math.round(drag.y0 + ((y - drag.y0) * i) / steps));
      drag.x0 = x;
      drag.y0 = y;
      drawMarks();
    }
    return;
  }
  if (currentTool() === 'object' && state.prediction && state.image && stage.inside(event)) {
    const [x, y] = stage.pixelAt(event);
    const p = state.prediction;
    const [ox, oy] = toOutputCell(x, y, {
      imageWidth: state.image.width,
      imageHeight: state.image.height,
      outWidth: p.width,
      outHeight: p.height,
    });
    drawMarks({ mask: objectMask(ox, oy), w: p.width, h: p.height });
  }
}

let objectCache: { labels: Int32Array; cell: number; mask: Uint8Array } | null = null;
export function objectMask(ox: number, oy: number): Uint8Array {
  const p = state.prediction as NonNullable<typeof state.prediction>;
  const cell = oy * p.width + ox;
  if (objectCache && objectCache.labels === p.labels && objectCache.mask[cell]) return objectCache.mask;
  const mask = connectedComponent(p.labels, p.width, p.height, ox, oy);
  objectCache = { labels: p.labels, cell, mask };
  return mask;
}

export function onPointerUp(stage: Stage, event: PointerEvent): void {
  if (event.button !== 0 || !state.image || !state.prediction) return;
  const tool = currentTool();
  const [x, y] = stage.pixelAt(event);
  if (drag && drag.stage === stage) {
    const d = drag;
    drag = null;
    if (tool === 'box') {
      const region: Region = { kind: 'box', x0: Math.min(d.x0, x), y0: Math.min(d.y0, y), x1: Math.max(d.x0, x), y1: Math.max(d.y0, y) };
      void ask(region);
    } else if (tool === 'brush' && state.brush) {
      const img = state.image;
      const mask = state.brush;
      state.brush = null;
      void ask({ kind: 'mask', width: img.width, height: img.height, mask });
    }
    return;
  }
  if (!stage.inside(event)) return;
  if (tool === 'pixel') {
    const r = state.region;
    if (event.shiftKey && r && (r.kind === 'pixel' || r.kind === 'pixels')) {
      const points: Array<[number, number]> = r.kind === 'pixel' ? [[r.x, r.y]] : [...r.points];
      if (!points.some(([px, py]) => px === x && py === y)) points.push([x, y]);
      void ask({ kind: 'pixels', points });
    } else {
      void ask({ kind: 'pixel', x, y });
    }
  } else if (tool === 'object') {
    void ask({ kind: 'object', x, y });
  } else if (tool === 'class') {
    const c = state.classChoice ?? classAt(x, y) ?? 0;
    void ask({ kind: 'class' }, c);
  }
}

export function readout(stage: Stage, event: MouseEvent): void {
  const img = state.image;
  if (!img || !stage.inside(event)) return;
  const [x, y] = stage.pixelAt(event);
  const parts = [`(${x}, ${y})`];
  const c = classAt(x, y);
  if (c !== null) parts.push(`predicted ${c} · ${className(c)}`);
  const e = state.explanation;
  if (e && e.width === img.width && e.height === img.height)
    parts.push(`heatmap ${e.heatmap[y * img.width + x].toFixed(3)} (1 = the CAM's maximum, ${e.camMax.toPrecision(3)})`);
  el.readout.textContent = parts.join(' · ');
}

/** Listens to the pointer on the three panels. */
export function installPointer(): void {
  for (const stage of [stages.image, stages.overlay, stages.prediction]) {
    stage.base.addEventListener('pointerdown', (e) => onPointerDown(stage, e));
    stage.base.addEventListener('pointermove', (e) => onPointerMove(stage, e));
    stage.base.addEventListener('pointerup', (e) => onPointerUp(stage, e));
    stage.base.addEventListener('pointerleave', () => {
      if (!drag) drawMarks();
    });
  }
}
