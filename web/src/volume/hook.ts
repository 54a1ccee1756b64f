/** The volume page's test hook (window.__segGradCam, the same name and core fields as the 2-D page's). */
import type { VolumeModelInfo } from './protocol.js';
import type { Dims3, VolumeAnswer, VolumeRegion, Voxel } from './protocol.js';

export interface Timing {
  /** Worker time. */
  ms: number;
  /** From the click to the drawn heatmap. */
  wallMs: number;
  cached: boolean;
  layer: string;
}

const base64 = (a: Float32Array | null): string | null => {
  if (!a) return null;
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

export const hook = {
  ready: false,
  predictions: 0,
  answers: 0,
  errors: 0,
  lastError: null as string | null,
  /** Predictions or questions stopped by Cancel. */
  cancelled: 0,
  /** The worker's progress lines (e.g. "explaining: patch 3 of 8"), the last 500. */
  progress: [] as string[],
  /** The last answer as the worker computed it (library explainVolume). */
  lastAnswer: null as VolumeAnswer | null,
  lastRegion: null as VolumeRegion | null,
  timings: [] as Timing[],
  /** The last heatmap: the CAM on the volume grid [D, H, W], not normalised, as base64 float32 bytes. */
  lastHeatmapBase64: (): string | null => base64(hook.lastAnswer?.heat ?? null),
  /** The volume the model reads (after the intensity option), [D, H, W]. */
  volume: null as Float32Array | null,
  volumeBase64: (): string | null => base64(hook.volume),
  /** The last CAM on the layer grid, as base64 float32 bytes. */
  lastCamBase64: (): string | null => base64(hook.lastAnswer?.cam ?? null),
  record(answer: VolumeAnswer, region: VolumeRegion, timing: Timing): void {
    hook.lastAnswer = answer;
    hook.lastRegion = region;
    hook.timings.push(timing);
    hook.answers++;
  },
  state: (): {
    model: VolumeModelInfo | null;
    volumeDims: Dims3 | null;
    voxel: Voxel | null;
    region: VolumeRegion | null;
    layer: string;
    slices: Dims3;
  } => ({ model: null, volumeDims: null, voxel: null, region: null, layer: '', slices: [0, 0, 0] }),
};
(window as unknown as { __segGradCam: typeof hook }).__segGradCam = hook;
