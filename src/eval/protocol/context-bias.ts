/**
 * Hoyer et al.'s context-bias metrics on the bias study's models (issue 15, part 4): per model,
 * method × layer and tile (M = the bias digit's pixels, class = the bias class, the bias texture on
 * one half of the background, B = that half's background pixels):
 *
 * - CBD, salient context / context (src/eval/context-metrics.ts), on the [0, 1] heatmap;
 * - CBL, biased salient context / salient context (chance 0.5: B is half of the context's area
 *   up to the digit's overlap with each half);
 * - relevance mass and rank accuracy on M ∪ B;
 * - the share of positive mass on B (the detection score) and on the whole context;
 * - the tile's counterfactual effect: the drop of the mean bias-class logit over M when B is
 *   re-rendered in other textures (means matched), for the per-tile Spearman with the context mass.
 *
 * Also the CBD of each test digit t on the bias texture (the CBD matrix's row for the bias digit).
 */
import * as tf from '@tensorflow/tfjs';
import type { BiasTile } from '../../data/bias-tiles.js';
import type { Explainer } from '../../explain.js';
import type { RgbaImage } from '../../image.js';
import type { Method } from '../../methods/index.js';
import { mask as maskRegion } from '../../region/region.js';
import { contextBiasDetection, contextBiasLocalisation, relevanceMassAccuracy, relevanceRankAccuracy } from '../context-metrics.js';
import type { StudyTile } from '../bias-study-tiles.js';

/** A method at a layer ('input' for input attributions). */
export interface StudyCondition {
  method: string;
  layer: string;
  /** Short label, e.g. 'seg-grad-cam @ bottleneck'. */
  label: string;
}

export interface TileMetrics {
  cbd: number[];
  cbl: number[];
  massMB: number[];
  rankMB: number[];
  /** Share of positive mass on B. */
  biasShare: number[];
  /** Share of positive mass on the context (outside M). */
  contextShare: number[];
  /** Empty maps (no positive mass): their shares are NaN. */
  empty: number;
}

export interface ModelContextBias {
  /** Per tile: drop of the mean bias-class logit over M, original − mean over the swapped renderings. */
  effect: number[];
  /** Per condition label. */
  metrics: Record<string, TileMetrics>;
  /** CBD per condition label and test digit (mean over that digit's tiles). */
  cbdByDigit: Record<string, number[]>;
  /** Milliseconds per explanation, per condition label. */
  ms: Record<string, number>;
}

function share(map: Float32Array, region: Uint8Array): number {
  let s = 0;
  let t = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] > 0 ? map[i] : 0;
    t += v;
    if (region[i]) s += v;
  }
  return t > 0 ? s / t : Number.NaN;
}

/** Mean logit of `classId` over `m` for each image, from one batched forward pass of the model. */
export function meanLogits(explainer: Explainer, images: RgbaImage[], m: Uint8Array, classId: number): number[] {
  const model = explainer.adapter.layersModel?.();
  if (!model) throw new Error('the bias study needs a LayersModel');
  const { width: W, height: H } = images[0];
  const x = new Float32Array(images.length * H * W * 3);
  images.forEach((img, b) => {
    for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) x[(b * H * W + p) * 3 + c] = img.data[p * 4 + c] / 255;
  });
  const logits = tf.tidy(() => {
    const out = model.predict(tf.tensor4d(x, [images.length, H, W, 3])) as tf.Tensor4D;
    return out.slice([0, 0, 0, classId], [-1, -1, -1, 1]).dataSync();
  });
  let n = 0;
  for (const v of m) if (v) n++;
  return images.map((_, b) => {
    let s = 0;
    for (let p = 0; p < H * W; p++) if (m[p]) s += logits[b * H * W + p];
    return n > 0 ? s / n : Number.NaN;
  });
}

const emptyMetrics = (): TileMetrics => ({ cbd: [], cbl: [], massMB: [], rankMB: [], biasShare: [], contextShare: [], empty: 0 });

/** Runs every condition on every study tile (and the test-digit tiles) for one model. */
export async function contextBiasModel(
  explainer: Explainer,
  tiles: StudyTile[],
  testTiles: BiasTile[][],
  conditions: StudyCondition[],
  methods: Map<string, Method>,
  biasClass: number,
  tick?: () => void,
): Promise<ModelContextBias> {
  const metrics: Record<string, TileMetrics> = {};
  const ms: Record<string, number> = {};
  const cbdByDigit: Record<string, number[]> = {};
  for (const c of conditions) {
    metrics[c.label] = emptyMetrics();
    ms[c.label] = 0;
    cbdByDigit[c.label] = [];
  }
  const effect: number[] = [];
  const explainAll = async (tile: BiasTile, record: (label: string, heatmap: Float32Array, empty: boolean) => void): Promise<void> => {
    const region = maskRegion(tile.image.width, tile.image.height, tile.digitMask);
    for (const c of conditions) {
      const t0 = performance.now();
      const e = await explainer.explain(tile.image, {
        region,
        classId: biasClass,
        layer: c.layer === 'input' ? undefined : c.layer,
        method: methods.get(c.method),
      });
      ms[c.label] += performance.now() - t0;
      record(c.label, e.heatmap, e.empty);
    }
    explainer.release();
  };
  for (const st of tiles) {
    const t = st.tile;
    const [orig, ...swapped] = meanLogits(explainer, [t.image, ...st.swapped], t.digitMask, biasClass);
    effect.push(orig - swapped.reduce((a, b) => a + b, 0) / swapped.length);
    const mb = Uint8Array.from(t.digitMask, (v, i) => (v || t.halfMask[i] ? 1 : 0));
    await explainAll(t, (label, h, empty) => {
      const r = metrics[label];
      r.cbd.push(contextBiasDetection(h, t.digitMask));
      r.cbl.push(contextBiasLocalisation(h, t.digitMask, t.halfMask));
      r.massMB.push(relevanceMassAccuracy(h, mb));
      r.rankMB.push(relevanceRankAccuracy(h, mb));
      r.biasShare.push(share(h, t.halfMask));
      r.contextShare.push(share(h, t.contextMask));
      if (empty) r.empty++;
    });
    tick?.();
  }
  for (let d = 0; d < testTiles.length; d++) {
    const sums: Record<string, number[]> = {};
    for (const c of conditions) sums[c.label] = [];
    for (const t of testTiles[d]) {
      await explainAll(t, (label, h) => sums[label].push(contextBiasDetection(h, t.digitMask)));
      tick?.();
    }
    for (const c of conditions) {
      const v = sums[c.label].filter(Number.isFinite);
      cbdByDigit[c.label][d] = v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
    }
  }
  const count = tiles.length + testTiles.reduce((a, b) => a + b.length, 0);
  for (const c of conditions) ms[c.label] /= Math.max(1, count);
  return { effect, metrics, cbdByDigit, ms };
}
