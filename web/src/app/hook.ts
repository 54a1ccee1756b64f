/** The test hook (window.__segGradCam): what tests and curious users can read. */
import type { Region } from '../../../src/region/region.js';
import type { BackendReport, ExplanationMsg, LayerRow } from '../protocol.js';
import { engine, imageName, layer, modelName, state } from './state.js';

/** What tests (and curious users) can read: the raw answers and the time each took. */
export interface TestHook {
  ready: boolean;
  /** Images predicted (one forward pass each). */
  predictions: number;
  answers: number;
  errors: number;
  /** Questions cancelled (by Cancel; a newer question supersedes silently). */
  cancelled: number;
  lastError: string | null;
  lastExplanation: ExplanationMsg | null;
  /** The last heatmap (image size, [0, 1]), as computed by the library in the worker. */
  lastHeatmap: Float32Array | null;
  /** The same as base64 of its float32 bytes (fast to carry out of the page). */
  lastHeatmapBase64: () => string | null;
  /** The region of the last answer. */
  lastRegion: Region | null;
  gridDone: number;
  backend: BackendReport | null;
  /** Per answer: worker time, and wall time from the request to the drawn heatmap. */
  timings: Array<{ ms: number; wallMs: number; cached: boolean; layer: string }>;
  state: () => {
    model: string | null;
    image: string | null;
    layer: string;
    region: Region | null;
    classIndex: number | null;
    layers: LayerRow[];
    engine: string;
  };
}
export const hook: TestHook = {
  ready: false,
  predictions: 0,
  answers: 0,
  errors: 0,
  cancelled: 0,
  lastError: null,
  lastExplanation: null,
  lastHeatmap: null,
  lastHeatmapBase64: () => {
    const h = hook.lastHeatmap;
    if (!h) return null;
    const bytes = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  },
  lastRegion: null,
  gridDone: 0,
  backend: null,
  timings: [],
  state: () => ({
    model: modelName(),
    image: imageName(),
    layer: layer(),
    region: state.region,
    classIndex: state.explanation?.classIndex ?? null,
    layers: state.info?.layers ?? [],
    engine: engine(),
  }),
};
(window as unknown as { __segGradCam: TestHook }).__segGradCam = hook;
