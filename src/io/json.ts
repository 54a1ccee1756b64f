import type { Explanation } from '../explain.js';
import type { Region } from '../region/region.js';

const round = (v: number) => Math.round(v * 1e6) / 1e6;

/** A JSON-friendly explanation: the raw CAM, α, the prediction summary and, on request, the heatmap. */
export function explanationJson(
  e: Explanation,
  context: { model: string; image: string; region: Region; backend: string; ms: number; heatmap: boolean },
): Record<string, unknown> {
  const region =
    context.region.kind === 'mask' ? { kind: 'mask', width: context.region.width, height: context.region.height } : context.region;
  return {
    model: context.model,
    image: context.image,
    imageSize: [e.width, e.height],
    layer: e.layer,
    method: e.method,
    class: e.classIndex,
    className: e.className ?? null,
    region,
    regionPixels: e.regionMask.reduce((a, b) => a + b, 0),
    score: e.score,
    scoreValue: e.scoreValue,
    camShape: [e.camHeight, e.camWidth],
    camMax: e.camMax,
    empty: e.empty,
    cam: Array.from(e.cam, round),
    weights: e.weights ? Array.from(e.weights, round) : null,
    heatmap: context.heatmap ? Array.from(e.heatmap, (v) => Math.round(v * 1e4) / 1e4) : undefined,
    backend: context.backend,
    milliseconds: Math.round(context.ms),
  };
}
