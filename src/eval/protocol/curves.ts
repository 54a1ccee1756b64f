/**
 * Protocol 2, deletion and insertion (Petsiuk et al. 2018) — LEGACY, kept so earlier reports
 * compare; the faithfulness curves of record are ROAD (road.ts, docs/evaluation/faithfulness.md).
 * Pixels removed from the image or
 * revealed in heatmap order (and in seeded random orders), S = the mean probability of the class
 * over M, the area under each curve. Run (per tile), plot, summary, section and note.
 */
import * as tf from '@tensorflow/tfjs';
import { hash32, mulberry32 } from '../../data/prng.js';
import type { TextureMnistSample } from '../../data/texture-mnist.js';
import type { Objective } from '../../engine/contract.js';
import type { Explainer } from '../../explain.js';
import { baselineFor, type Baseline } from '../../methods/baseline.js';
import { imageToInput } from '../../preprocess.js';
import { regionObjective } from '../../region/objective.js';
import { resizeLabelsNearest } from '../../render/resize.js';
import { curveArea, heatmapOrder, perturbationCurve, randomOrder, type BatchScorer } from '../perturbation.js';
import { stringHash } from '../randomize.js';
import type { ConditionResult, EvaluationResults } from '../results.js';
import { encodePng } from '../../io/codec.js';
import type { RgbaImage } from '../../image.js';
import { lineChart, type Series } from '../plot.js';
import { hstack, vstack } from '../canvas.js';
import { BLACK, fmt, type ReportView } from '../report-view.js';
import { mean } from '../stats.js';

/** The random-order reference curves per model: AUCs per tile and order, mean curves. */
export type RandomCurves = EvaluationResults['random'];

export function emptyRandomCurves(models: number, steps: number): RandomCurves {
  return {
    deletion: Array.from({ length: models }, () => [] as number[]),
    insertion: Array.from({ length: models }, () => [] as number[]),
    deletionCurve: Array.from({ length: models }, () => new Array<number>(steps + 1).fill(0)),
    insertionCurve: Array.from({ length: models }, () => new Array<number>(steps + 1).fill(0)),
  };
}

/** The probability objective of the curves as a mean over M: S in [0, 1]. */
function curveObjective(obj: Objective): Objective {
  let n = 0;
  for (const w of obj.weights) if (w !== 0) n++;
  const weights = Float32Array.from(obj.weights, (w) => w / Math.max(1, n));
  return { weights, on: obj.on, offset: obj.offset / Math.max(1, n), ...(obj.support ? { support: obj.support } : {}) };
}

function tensorData(t: tf.Tensor): Float32Array {
  const d = t.dataSync() as Float32Array;
  return d.slice();
}

/** What the curves of one tile need; `tile` is its held-out index (it seeds the orders). */
export interface TileCurves {
  tile: number;
  input: Float32Array;
  delBase: Float32Array;
  insBase: Float32Array;
  score: BatchScorer;
}

/** How the curves of a run are drawn: steps, random orders, seed and the number of curve tiles (the means' divisor). */
export interface CurveSettings {
  steps: number;
  randomOrders: number;
  seed: number;
  curveTiles: number;
}

/** Prepares the curves of a tile: its input, the two baselines, and S (mean P(class) over M) for a batch of images. */
export function tileCurves(
  explainer: Explainer,
  s: TextureMnistSample,
  m: Uint8Array,
  tile: number,
  biasClass: number,
  [H, W, C]: [number, number, number],
  delBaseline: Baseline,
  insBaseline: Baseline,
): TileCurves {
  const out = explainer.adapter.output;
  const x = imageToInput(s.image, H, W, C, explainer.options);
  const range = explainer.options.inputRange ?? [0, 1];
  const b1 = baselineFor(x, delBaseline, range);
  const b2 = baselineFor(x, insBaseline, range);
  const [input, delBase, insBase] = [tensorData(x), tensorData(b1), tensorData(b2)];
  tf.dispose([x, b1, b2]);
  const obj = curveObjective(regionObjective(out, biasClass, resizeLabelsNearest(m, W, H, out.width, out.height), 'probability'));
  const score: BatchScorer = async (images, count) => {
    const batch = tf.tensor4d(images, [count, H, W, C]);
    try {
      return await explainer.adapter.scores(batch, obj);
    } finally {
      batch.dispose();
    }
  };
  return { tile, input, delBase, insBase, score };
}

/** The random-order curves of a tile for model `mi`, added to `random`. */
export async function randomTileCurves(tc: TileCurves, random: RandomCurves, mi: number, o: CurveSettings, C: number): Promise<void> {
  const { input, delBase, insBase, score } = tc;
  const curveTiles = o.curveTiles;
  for (let r = 0; r < o.randomOrders; r++) {
    const ord = randomOrder(input.length / C, mulberry32(hash32(o.seed, 0x0a2d, tc.tile, r)));
    const dc = await perturbationCurve(input, delBase, ord, o.steps, C, score);
    const ic = await perturbationCurve(insBase, input, ord, o.steps, C, score);
    random.deletion[mi].push(curveArea(dc));
    random.insertion[mi].push(curveArea(ic));
    dc.forEach((v, j) => (random.deletionCurve[mi][j] += v / (curveTiles * o.randomOrders)));
    ic.forEach((v, j) => (random.insertionCurve[mi][j] += v / (curveTiles * o.randomOrders)));
  }
}

/** The curves of a condition's heatmap on a tile for model `mi` (ties broken by a seeded permutation), added to `cond`. */
export async function conditionTileCurves(
  tc: TileCurves,
  cond: ConditionResult,
  key: string,
  heatmap: Float32Array,
  mi: number,
  o: CurveSettings,
  C: number,
): Promise<void> {
  const { input, delBase, insBase, score } = tc;
  const curveTiles = o.curveTiles;
  const ord = heatmapOrder(heatmap, mulberry32(hash32(o.seed, 0x0de1, tc.tile, stringHash(key))));
  const dc = await perturbationCurve(input, delBase, ord, o.steps, C, score);
  const ic = await perturbationCurve(insBase, input, ord, o.steps, C, score);
  cond.deletion[mi].push(curveArea(dc));
  cond.insertion[mi].push(curveArea(ic));
  dc.forEach((v, j) => (cond.deletionCurve[mi][j] += v / curveTiles));
  ic.forEach((v, j) => (cond.insertionCurve[mi][j] += v / curveTiles));
}

/** deletion-insertion.png: the mean curves of every method at the bottleneck and at the input, and the random order. */
export function curvesPlots(v: ReportView, images: Record<string, Uint8Array>): void {
  const { r, labels, bottleneck, methodColor } = v;
  // Deletion / insertion curves (first model): every method at the bottleneck, input attributions, random.
  if (r.options.curveTiles > 0) {
    const xs = Array.from({ length: r.options.steps + 1 }, (_, j) => j / r.options.steps);
    const curveSeries = (which: 'deletionCurve' | 'insertionCurve', mi: number): Series[] => [
      ...r.conditions
        .filter((c) => c.layer === bottleneck || c.layer === 'input')
        .map((c) => ({
          label: `${c.method}${c.layer === 'input' ? '' : ' @ bn'}`,
          color: methodColor(c.method),
          xs,
          ys: c[which][mi],
          dash: c.layer === 'input',
        })),
      { label: 'random order', color: BLACK, xs, ys: r.random[which][mi], thickness: 3 },
    ];
    const charts: RgbaImage[] = [];
    for (let mi = 0; mi < r.models.length; mi++) {
      charts.push(
        hstack(
          [
            lineChart({
              title: `Deletion, ${labels[mi]} model`,
              xLabel: 'fraction of pixels deleted',
              yLabel: 'P(class) in M',
              series: curveSeries('deletionCurve', mi),
              xRange: [0, 1],
              yRange: [0, 1],
              legend: false,
              width: 560,
            }),
            lineChart({
              title: `Insertion, ${labels[mi]} model`,
              xLabel: 'fraction of pixels inserted',
              yLabel: 'P(class) in M',
              series: curveSeries('insertionCurve', mi),
              xRange: [0, 1],
              yRange: [0, 1],
            }),
          ],
          8,
        ),
      );
    }
    images['deletion-insertion.png'] = encodePng(vstack(charts, 24));
  }
}

/** Summary line: deletion and insertion. */
export function curvesSummary(v: ReportView, md: string[]): void {
  const { r, labels, bottleneck, sgc, randDel, randIns } = v;
  if (r.options.curveTiles > 0 && sgc) {
    const bnConds = r.conditions.filter((c) => c.layer === bottleneck || c.layer === 'input');
    const bestDel = [...r.conditions].sort((a, b) => mean(a.deletion[0]) - mean(b.deletion[0]))[0];
    const bestIns = [...r.conditions].sort((a, b) => mean(b.insertion[0]) - mean(a.insertion[0]))[0];
    const beatDel = bnConds.filter((c) => mean(c.deletion[0]) < randDel[0]).length;
    const beatIns = bnConds.filter((c) => mean(c.insertion[0]) > randIns[0]).length;
    md.push(
      `* **Deletion / insertion** (${labels[0]} model, ${r.options.curveTiles} tiles, ${r.options.steps} steps, S = mean P(class) over M; deletion to ${String(r.options.deletionBaseline)}, insertion from ${String(r.options.insertionBaseline)}): ` +
        `Seg-Grad-CAM at the bottleneck: deletion AUC **${fmt(mean(sgc.deletion[0]))}** vs random **${fmt(randDel[0])}** (lower is better), insertion AUC **${fmt(mean(sgc.insertion[0]))}** vs random **${fmt(randIns[0])}** (higher is better). ` +
        `Best deletion: ${bestDel.method} @ ${bestDel.layer} ${fmt(mean(bestDel.deletion[0]))}; best insertion: ${bestIns.method} @ ${bestIns.layer} ${fmt(mean(bestIns.insertion[0]))}. ` +
        `At the bottleneck and input, ${beatDel}/${bnConds.length} methods beat random on deletion and ${beatIns}/${bnConds.length} on insertion.`,
    );
  }
}

/** Section 2: deletion and insertion. */
export function curvesSection(v: ReportView, md: string[]): void {
  const { r, randDel, randIns } = v;
  // 2. Deletion / insertion.
  if (r.options.curveTiles > 0) {
    md.push('## 2. Deletion and insertion (legacy)', '');
    md.push(
      `Pixels are deleted (set to the ${String(r.options.deletionBaseline)} baseline) or inserted (into the ${String(r.options.insertionBaseline)} image) in the order of the heatmap, in ${r.options.steps} equal steps; ` +
        `S = the mean softmax probability of class ${r.dataset.biasClass} over M, so the normalised area under the curve lies in [0, 1]. Lower deletion AUC and higher insertion AUC = more faithful. ` +
        `Random: ${r.options.randomOrders} seeded random orders per tile. ` +
        '*Legacy protocol*, kept so earlier reports compare: a black deletion baseline and pixel-wise orders leak the removal shape to the model, and mean P(class) is not the score the explanation explains. ' +
        'The faithfulness curves of record are ROAD (src/eval/protocol/road.ts; docs/evaluation/faithfulness.md).',
      '',
    );
    const head = ['method', 'layer', ...r.models.flatMap((m) => [`deletion, ${m.label}`, `insertion, ${m.label}`])];
    md.push(`| ${head.join(' | ')} |`, `|---|---|${r.models.map(() => '---:|---:|').join('')}`);
    md.push(`| *random order* | | ${r.models.map((_, mi) => `*${fmt(randDel[mi])}* | *${fmt(randIns[mi])}*`).join(' | ')} |`);
    for (const c of r.conditions) {
      md.push(
        `| ${c.method} | ${c.layer} | ${r.models
          .map((_, mi) => {
            const d = mean(c.deletion[mi]);
            const i = mean(c.insertion[mi]);
            return `${d < randDel[mi] ? `**${fmt(d)}**` : fmt(d)} | ${i > randIns[mi] ? `**${fmt(i)}**` : fmt(i)}`;
          })
          .join(' | ')} |`,
      );
    }
    md.push('', 'Bold: better than the random order.', '', '![deletion and insertion curves](deletion-insertion.png)', '');
  }
}

/** Note on the random deletion order. */
export function curvesNote(v: ReportView, md: string[]): void {
  const { r, labels } = v;
  if (r.options.curveTiles > 0) {
    const rc = r.random.deletionCurve[0];
    md.push(
      `* Random deletion scatters ${String(r.options.deletionBaseline)} pixels over the texture: with 1/${r.options.steps} of the pixels deleted at random the ${labels[0]} model's P(class) in M already falls from ${fmt(rc[0])} to ${fmt(rc[1])}. ` +
        'Deleting in heatmap order removes contiguous regions and disturbs the model less, so the random order is a strong deletion baseline here; insertion (from the blurred image) separates the methods more clearly.',
    );
  }
}
