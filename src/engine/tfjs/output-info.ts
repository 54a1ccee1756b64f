import { SegGradCamError } from '../../errors.js';
import type { OutputInfo } from '../contract.js';

/** Reads a model output shape as a class map [1,H,W,C] or a class vector [1,C]. */
export function readOutputInfo(shape: ReadonlyArray<number | null>, activation: OutputInfo['activation']): OutputInfo {
  const dims = shape.slice(1);
  if (shape.length === 4 && dims.every((d) => d != null && d > 0)) {
    const [height, width, channels] = dims as number[];
    return { kind: 'map', height, width, channels, activation };
  }
  if (shape.length === 2 && dims[0] != null && dims[0] > 0) {
    return { kind: 'vector', height: 1, width: 1, channels: dims[0], activation };
  }
  throw new SegGradCamError(
    `unsupported model output shape [${shape.map((d) => d ?? '?').join(', ')}]: expected a class map [1, H, W, C] or a class vector [1, C]`,
    'shape',
  );
}
