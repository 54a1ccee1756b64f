/**
 * Protocol 4, the layer sweep: the bias AUROC, the curve AUCs and the first sanity step of every
 * method at each layer (early encoder, bottleneck, decoder). Computed from the other protocols'
 * results: plot and section.
 */
import { sanityMeans } from './sanity.js';
import { encodePng } from '../../io/codec.js';
import type { RgbaImage } from '../../image.js';
import { barChart } from '../plot.js';
import { categorical, hstack, vstack } from '../canvas.js';
import { fmt, type ReportView } from '../report-view.js';
import { mean } from '../stats.js';
import { type ConditionResult } from '../results.js';

/** layer-sweep.png: the bias AUROC and the curve AUCs per method and layer. */
export function layerSweepPlots(v: ReportView, images: Record<string, Uint8Array>): void {
  const { r, labels, two, find, randDel, randIns, methods, layerCols } = v;
  // Layer sweep: AUROC and curve AUCs per method and layer.
  const sweepRows = (value: (c: ConditionResult) => number) =>
    methods.map((m) => ({
      label: m,
      values: layerCols.map((l) => {
        const c = find(m, l);
        return c ? value(c) : Number.NaN;
      }),
    }));
  const layerSeries = layerCols.map((l, i) => ({
    label: l === 'input' ? 'input (attribution)' : `${l} (${r.layers.find((x) => x.name === l)?.role})`,
    color: categorical(i),
  }));
  const sweep: RgbaImage[] = [];
  if (two) {
    sweep.push(
      barChart({
        title: 'Bias detection AUROC (biased vs unbiased model)',
        rows: sweepRows((c) => c.auroc),
        series: layerSeries,
        xLabel: 'AUROC (0.5 = no separation)',
        xRange: [0, 1],
        refLines: [{ value: 0.5, label: 'chance 0.5', color: [200, 0, 0] }],
        width: 760,
      }),
    );
  }
  if (r.options.curveTiles > 0) {
    // Curve AUCs of the first model per method and layer, against the random order.
    const aucChart = (which: 'deletion' | 'insertion', title: string, random: number) =>
      barChart({
        title: `${title} AUC, ${labels[0]} model (${which === 'deletion' ? 'lower' : 'higher'} = more faithful)`,
        rows: sweepRows((c) => mean(c[which][0])),
        series: layerSeries,
        xLabel: 'mean P(class in M) along the curve',
        xRange: [0, Math.max(0.05, ...r.conditions.map((c) => mean(c[which][0])).filter(Number.isFinite), random) * 1.1],
        refLines: [{ value: random, label: `random order ${fmt(random, 3)}`, color: [200, 0, 0] }],
        width: 760,
      });
    sweep.push(aucChart('deletion', 'Deletion', randDel[0]), aucChart('insertion', 'Insertion', randIns[0]));
  }
  if (sweep.length > 0)
    images['layer-sweep.png'] = encodePng(sweep.length > 2 ? vstack([hstack(sweep.slice(0, 2), 24), sweep[2]], 24) : hstack(sweep, 24));
}

/** Section 4: the layer sweep. */
export function layerSweepSection(v: ReportView, md: string[], images: Record<string, Uint8Array>): void {
  const { r, labels, two, find, steps, methods } = v;
  // 4. Layer sweep.
  md.push('## 4. Layer sweep', '');
  md.push(
    `The paper's claim is that the bottleneck is the most informative layer of a U-Net. Per method, the metrics at ${r.layers.map((l) => `${l.name} (${l.role})`).join(' · ')}; best layer in bold.`,
    '',
  );
  const camMethods = methods.filter((m) => r.conditions.some((c) => c.method === m && c.layer !== 'input'));
  const cell = (m: string, value: (c: ConditionResult) => number, better: 'high' | 'low', digits = 3) => {
    const vals = r.layers.map((l) => {
      const c = find(m, l.name);
      return c ? value(c) : Number.NaN;
    });
    const fin = vals.filter(Number.isFinite);
    const best = fin.length > 1 ? (better === 'high' ? Math.max(...fin) : Math.min(...fin)) : Number.NaN;
    return vals.map((v) => (v === best ? `**${fmt(v, digits)}**` : fmt(v, digits))).join(' · ');
  };
  const sweepCols: Array<[string, (c: ConditionResult) => number, 'high' | 'low', number]> = [];
  if (two) sweepCols.push(['bias AUROC', (c) => c.auroc, 'high', 2]);
  if (two) sweepCols.push([`share ${labels[0]} − ${labels[1]}`, (c) => mean(c.shares[0]) - mean(c.shares[1]), 'high', 3]);
  if (r.options.curveTiles > 0) {
    sweepCols.push([`deletion AUC (${labels[0]})`, (c) => mean(c.deletion[0]), 'low', 3]);
    sweepCols.push([`insertion AUC (${labels[0]})`, (c) => mean(c.insertion[0]), 'high', 3]);
  }
  if (steps.length > 0 && r.options.sanityTiles > 0)
    sweepCols.push([`Spearman after ${steps[0].name}`, (c) => sanityMeans(c)[0], 'low', 2]);
  md.push(`| method | ${sweepCols.map((c) => c[0]).join(' | ')} |`, `|---|${sweepCols.map(() => '---|').join('')}`);
  for (const m of camMethods) md.push(`| ${m} | ${sweepCols.map(([, f, b, d]) => cell(m, f, b, d)).join(' | ')} |`);
  md.push('');
  if (images['layer-sweep.png']) md.push('![layer sweep](layer-sweep.png)', '');
}
