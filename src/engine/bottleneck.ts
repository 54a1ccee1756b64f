import type { LayerInfo } from './contract.js';

/**
 * The layer with the smallest spatial map, the deepest one on ties — the paper's most
 * informative choice for a U-Net. Maps of 1x1 are skipped while larger ones exist: they are
 * squeeze-and-excitation gates or pooled branches, which carry no spatial information to show.
 */
export function findBottleneck(layers: LayerInfo[]): LayerInfo {
  if (layers.length === 0) throw new Error('the model has no layer with a spatial output');
  const area = (l: LayerInfo) => l.outputShape[1] * l.outputShape[2];
  const spatial = layers.filter((l) => area(l) > 1);
  const pool = spatial.length > 0 ? spatial : layers;
  let best = pool[0];
  for (const l of pool) if (area(l) <= area(best)) best = l;
  return best;
}
