import type { LayerInfo } from './contract.js';

/**
 * How a layer is computed from the nearest listed layers (an engine that knows its graph gives
 * this, see ModelAdapter.layerLinks): `pointwise` when only position-wise ops with one data input
 * lie between (1x1 convolutions, per-token linear maps, normalisations, activations, reshapes).
 */
export interface LayerLink {
  name: string;
  pointwise: boolean;
}

/**
 * The default layer: the bottleneck, i.e. the encoder's last output at the smallest resolution,
 * where the decoder starts (docs/onnx.md, "The automatic layer").
 *
 * Candidates: layers whose map is larger than 1x1 (1x1 maps are squeeze-and-excitation gates or
 * pooled branches), with more than one channel (a 1-channel map is a side output or a logit), and
 * not a Cast (a float16 model's Casts repeat their input) — each filter dropped when it would leave
 * nothing. Among the candidates at the smallest map size:
 *  - with the layer graph (`links`): the layers at that size that read one another form groups
 *    (a U²-Net's RSU blocks have small inner maps too, but only the deepest encoder stage is a
 *    long run of layers at the smallest size); the largest group's last layer, then back through
 *    position-wise projections of it (a decoder's 1x1 conv or per-token linear map of the encoder
 *    output, as SegFormer's all-MLP head, is the decoder's first step, not the encoder's output);
 *  - without it: the deepest one (the last in the engine's order).
 */
export function findBottleneck(layers: LayerInfo[], links?: ReadonlyMap<string, LayerLink[]>): LayerInfo {
  if (layers.length === 0) throw new Error('the model has no layer with a spatial output');
  const area = (l: LayerInfo) => l.outputShape[1] * l.outputShape[2];
  const keep = (pool: LayerInfo[], test: (l: LayerInfo) => boolean) => {
    const kept = pool.filter(test);
    return kept.length > 0 ? kept : pool;
  };
  let pool = keep(layers, (l) => area(l) > 1);
  pool = keep(pool, (l) => (l.outputShape[3] ?? 1) > 1);
  pool = keep(pool, (l) => l.type !== 'Cast');
  const smallest = Math.min(...pool.map(area));
  const at = pool.filter((l) => area(l) === smallest);
  if (!links) return at[at.length - 1];

  const index = new Map(at.map((l, i) => [l.name, i]));
  const parent = at.map((_, i) => i);
  const root = (i: number): number => (parent[i] === i ? i : (parent[i] = root(parent[i])));
  for (const l of at) {
    for (const link of links.get(l.name) ?? []) {
      const j = index.get(link.name);
      if (j != null) parent[root(j)] = root(index.get(l.name) as number);
    }
  }
  const size = new Map<number, number>();
  for (let i = 0; i < at.length; i++) size.set(root(i), (size.get(root(i)) ?? 0) + 1);
  // The largest group; on ties the deeper one (its last layer comes later).
  let best = at.length - 1;
  for (let i = at.length - 1; i >= 0; i--) if ((size.get(root(i)) ?? 0) > (size.get(root(best)) ?? 0)) best = i;
  const group = root(best);
  let chosen = -1;
  for (let i = 0; i < at.length; i++) if (root(i) === group) chosen = i;
  // Back through position-wise projections to the layer they project.
  for (let hops = 0; hops < at.length; hops++) {
    const ins = links.get(at[chosen].name) ?? [];
    const from = ins.length === 1 && ins[0].pointwise ? index.get(ins[0].name) : undefined;
    if (from == null) break;
    chosen = from;
  }
  return at[chosen];
}
