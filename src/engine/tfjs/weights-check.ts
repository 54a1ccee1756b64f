/**
 * Whether a model's weight files hold the bytes its manifest needs (tfjs itself reports a
 * mismatch late and cryptically, or not at all). Browser-safe: the Node loader and the explorer
 * both call it.
 */
import type * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';

/** Bytes per element of the fixed-size dtypes a manifest names (for quantized weights, the quantization dtype). */
const DTYPE_BYTES = new Map<string, number>([
  ['float32', 4],
  ['int32', 4],
  ['bool', 1],
  ['uint8', 1],
  ['uint16', 2],
  ['float16', 2],
  ['complex64', 8],
]);

/** The bytes a manifest's weights take, or null when one has no fixed size (strings) and the total cannot be known. */
export function manifestBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | null {
  let total = 0;
  for (const s of specs) {
    const bytes = DTYPE_BYTES.get(s.quantization?.dtype ?? s.dtype);
    if (bytes === undefined) return null;
    total += s.shape.reduce((a, b) => a * b, 1) * bytes;
  }
  return total;
}

/**
 * Throws a SegGradCamError ('model') unless `held` (the bytes of the weight files) is exactly
 * what the manifest needs; `source` names the model.json in the message.
 */
export function checkWeightBytes(specs: readonly tf.io.WeightsManifestEntry[], held: number, source: string): void {
  const needed = manifestBytes(specs);
  if (needed !== null && needed !== held) {
    throw new SegGradCamError(
      `the weights do not match ${source}: its manifest needs ${needed} bytes, the weight files hold ${held}`,
      'model',
    );
  }
}
