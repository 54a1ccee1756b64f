/**
 * Input attributions on volumes, from ∂S/∂x at the model input ([C, D, H, W], channels first):
 * - saliency (Simonyan et al.): max over input channels of |∂S/∂x|;
 * - gradient-x-input (Shrikumar et al.): ReLU(Σ_c x_c ∂S/∂x_c) (negative: ReLU(−Σ …)).
 * The same definitions as the 2-D methods (src/methods/saliency.ts, gradient-x-input.ts), on the
 * voxels. Across sliding windows ∂S/∂x is S's exact gradient through the blending (the patches'
 * input gradients summed, assembleInputGradient), so both maps are those of the blended S.
 * SmoothGrad and Integrated Gradients (many noisy or scaled copies of the volume, each a sliding-window
 * pass) are not built for volumes.
 */
export const INPUT_METHODS = ['saliency', 'gradient-x-input'] as const;
export const isInputMethod = (method: string): boolean => (INPUT_METHODS as readonly string[]).includes(method);

/** The method's map [n] and the map before the ReLU, from x and ∂S/∂x ([channels, n] each). */
export function inputAttributionMap(
  method: string,
  x: Float32Array,
  gradient: Float32Array,
  channels: number,
  negative = false,
): { cam: Float32Array; linear: Float32Array } {
  const n = gradient.length / channels;
  if (method === 'saliency') {
    const cam = new Float32Array(n);
    for (let c = 0; c < channels; c++) for (let v = 0; v < n; v++) cam[v] = Math.max(cam[v], Math.abs(gradient[c * n + v]));
    return { cam, linear: cam };
  }
  const lin = new Float64Array(n);
  for (let c = 0; c < channels; c++) for (let v = 0; v < n; v++) lin[v] += x[c * n + v] * gradient[c * n + v];
  const sign = negative ? -1 : 1;
  return { cam: Float32Array.from(lin, (v) => Math.max(sign * v, 0)), linear: Float32Array.from(lin) };
}
