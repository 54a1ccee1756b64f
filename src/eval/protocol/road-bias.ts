/**
 * The conditions ROAD and the sanity checks run on the bias study's models (issue 15, parts 5 and
 * 6): input attributions, Seg-Grad-CAM at the bottleneck and at a decoder layer, Grad-CAM++ and
 * HiResCAM at the bottleneck, and the Sobel edge control that ignores the model.
 */
import type { Explainer } from '../../explain.js';
import type { ProtocolCondition } from './attribution.js';
import { sobelControl } from './controls.js';

/** The decoder layer of the study: the last layer after the bottleneck at half the input size (else the layer before the output). */
export function decoderLayer(explainer: Explainer): string {
  const layers = explainer.adapter.layers();
  const size = explainer.adapter.input.height;
  const at = layers.findIndex((l) => l.name === explainer.bottleneck);
  const half = layers.slice(at + 1).filter((l) => l.outputShape[1] === size / 2);
  return half.length ? half[half.length - 1].name : layers[layers.length - 2].name;
}

/** Integrated Gradients' steps (as the bias study's report: 16 steps, one batch). */
export const IG_OPTIONS = { steps: 16, batchSize: 17 };

/** The conditions, layers resolved on the model. */
export function biasConditions(explainer: Explainer): ProtocolCondition[] {
  const bn = explainer.bottleneck;
  const dec = decoderLayer(explainer);
  return [
    { label: 'seg-grad-cam @ bottleneck', method: 'seg-grad-cam', layer: bn },
    { label: 'seg-grad-cam @ decoder', method: 'seg-grad-cam', layer: dec },
    { label: 'grad-cam++ @ bottleneck', method: 'grad-cam++', layer: bn },
    { label: 'hires-cam @ bottleneck', method: 'hires-cam', layer: bn },
    { label: 'saliency', method: 'saliency', layer: 'input' },
    { label: 'gradient-x-input', method: 'gradient-x-input', layer: 'input' },
    { label: 'integrated-gradients', method: 'integrated-gradients', layer: 'input', methodOptions: IG_OPTIONS },
    { label: 'sobel (control)', attribute: sobelControl },
  ];
}
