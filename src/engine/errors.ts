import { SegGradCamError } from '../errors.js';
import type { LayerInfo } from './contract.js';

/** The error for a layer name that is not there, listing (at most 40 of) the layers after any `aliases` ('bottleneck', …). */
export function unknownLayer(layer: string, layers: LayerInfo[], aliases: string[] = []): SegGradCamError {
  const names = layers.map((l) => l.name);
  const shown = names.length > 40 ? [...names.slice(0, 40), `… (${names.length - 40} more)`] : names;
  return new SegGradCamError(`unknown layer '${layer}'; valid layers: ${[...aliases, ...shown].join(', ')}`, 'layer');
}

/** What an engine is, for messages ("this is an ONNX model"), from the adapter's `kind`. */
export function engineLabel(kind: string): string {
  switch (kind) {
    case 'layers-model':
      return 'a TF.js LayersModel';
    case 'graph-model':
      return 'a TF.js GraphModel';
    case 'onnx':
      return 'an ONNX model';
    default:
      return `a model of kind '${kind}'`;
  }
}

/**
 * The error for a method whose capability the model's engine does not offer:
 * "<method> is not supported by this model: this is an ONNX model (<why>)".
 */
export function notSupported(method: string, kind: string, why: string): SegGradCamError {
  return new SegGradCamError(`${method} is not supported by this model: this is ${engineLabel(kind)} (${why})`, 'model');
}
