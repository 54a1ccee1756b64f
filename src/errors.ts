/**
 * A problem with what the user asked for or gave us (file, layer, pixel, class, shape).
 * The CLI prints its message on one line and exits with code 2; anything else is a bug.
 */
export class SegGradCamError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode,
  ) {
    super(message);
    this.name = 'SegGradCamError';
  }
}

/** 'numeric': the model produced NaN or an infinite value (its weights, or an input range it overflows on). */
export type ErrorCode = 'file' | 'image' | 'model' | 'layer' | 'pixel' | 'class' | 'region' | 'shape' | 'usage' | 'numeric';
