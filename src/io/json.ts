import type { Explanation } from '../explain.js';
import type { Region } from '../region/region.js';

/** Where and how the explanation was computed, for the JSON. */
export interface JsonContext {
  model: string;
  image: string;
  region: Region;
  /** What ran the model (ModelAdapter.runtime, e.g. 'tfjs-wasm', 'onnxruntime-node (cpu)'). */
  runtime?: string;
  /**
   * How the graph explained differs from the file (ModelAdapter.notes: float16 weights widened,
   * quantised ops read straight-through), one sentence each; [] when it is the file itself; null when not known.
   */
  notes?: readonly string[];
  ms: number;
  heatmap: boolean;
}

/**
 * A JSON-friendly explanation: the raw CAM, α, the prediction summary and, on request, the heatmap.
 * Numbers are written unrounded: each float32 value becomes the shortest decimal that reads back as
 * the same number, so a parsed array equals the library's Float32Array element for element.
 */
export function explanationJson(e: Explanation, context: JsonContext): Record<string, unknown> {
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
    // Written only when asked for: a negative map, a contrast class c′ (S = Σ_M (y^c − β y^c′)), a normalisation.
    ...(e.negative ? { negative: true } : {}),
    ...(e.contrastClassIndex !== undefined
      ? { contrastClass: e.contrastClassIndex, contrastClassName: e.contrastClassName ?? null, contrastWeight: e.contrastWeight ?? 1 }
      : {}),
    ...(e.normalize ? { normalize: e.normalize } : {}),
    region,
    regionPixels: e.regionMask.reduce((a, b) => a + b, 0),
    score: e.score,
    scoreValue: e.scoreValue,
    camShape: [e.camHeight, e.camWidth],
    camMax: camMaximum(e.cam),
    empty: e.empty,
    cam: Array.from(e.cam),
    weights: e.weights ? Array.from(e.weights) : null,
    heatmap: context.heatmap ? Array.from(e.heatmap) : undefined,
    runtime: context.runtime ?? null,
    notes: context.notes ? [...context.notes] : null,
    milliseconds: context.ms,
  };
}

/** The largest finite value of the raw CAM (0 when it has none above 0, as for an empty CAM). */
export function camMaximum(cam: Float32Array): number {
  let max = 0;
  for (const v of cam) if (v > max && Number.isFinite(v)) max = v;
  return max;
}
