/**
 * The Markdown section and the figure of a ROAD run (road.ts): per variant, a table of areas with
 * paired bootstrap intervals against the random order, Kendall's τ between the MoRF and LeRF
 * rankings, the differences to the first condition, and the mean curves.
 */
import { encodePng } from '../../io/codec.js';
import type { RgbaImage } from '../../image.js';
import { categorical, hstack, vstack } from '../canvas.js';
import { lineChart, type Series } from '../plot.js';
import { BLACK, fmt } from '../report-view.js';
import type { RoadComparison, RoadResult, RoadVariantResult } from './road.js';

export interface ReportOptions {
  /** File name of the figure (default 'road.png'); the Markdown links it by this name. */
  figure?: string;
  /** Heading level of the section (default 2). */
  level?: number;
  /** Digits shown (default 3); the JSON keeps every digit. */
  digits?: number;
}

const ci = (c: RoadComparison | undefined, d: number) => (c ? `${fmt(c.estimate, d)} [${fmt(c.low, d)}, ${fmt(c.high, d)}]` : 'n/a');
const excludesZero = (c: RoadComparison | undefined) => !!c && (c.low > 0 || c.high < 0);

const VARIANT_TEXT = {
  full: 'every pixel may be removed',
  context: 'only context pixels are removed (M is never touched): how much the score depends on the context the map points at',
};

function variantCharts(v: RoadVariantResult, digitsLabel: string): RgbaImage {
  const xs = v.fractions;
  const series = (which: 'meanMorf' | 'meanLerf'): Series[] => [
    ...v.conditions.map((c, i) => ({ label: c.label, color: categorical(i), xs, ys: c[which], markers: true })),
    { label: 'random order', color: BLACK, xs, ys: v.random.meanCurve, thickness: 3 },
  ];
  const all = [...v.conditions.flatMap((c) => [...c.meanMorf, ...c.meanLerf]), ...v.random.meanCurve].filter(Number.isFinite);
  const lo = Math.min(0, ...all);
  const hi = Math.max(...all, lo + 1e-6);
  return hstack(
    [
      lineChart({
        title: `MoRF (${v.variant}): most relevant patches first`,
        xLabel: 'fraction of patches removed',
        yLabel: digitsLabel,
        series: series('meanMorf'),
        xRange: [0, 1],
        yRange: [lo, hi],
        legend: false,
        width: 560,
      }),
      lineChart({
        title: `LeRF (${v.variant}): least relevant patches first`,
        xLabel: 'fraction of patches removed',
        yLabel: digitsLabel,
        series: series('meanLerf'),
        xRange: [0, 1],
        yRange: [lo, hi],
      }),
    ],
    8,
  );
}

/** The section (Markdown) and its figure (PNG bytes by file name). */
export function roadReport(r: RoadResult, options: ReportOptions = {}): { markdown: string; images: Record<string, Uint8Array> } {
  const d = options.digits ?? 3;
  const h = '#'.repeat(options.level ?? 2);
  const figure = options.figure ?? 'road.png';
  const o = r.options;
  const md: string[] = [];
  md.push(`${h} ROAD faithfulness curves`, '');
  md.push(
    `ROAD (Rong et al. 2022) on ${r.tiles.length} tiles: the image is cut into ${o.patchSize}x${o.patchSize}-pixel patches (the same for every method and for the random order); ` +
      `patches are ranked by the sum of the map over them and removed most relevant first (MoRF) or least relevant first (LeRF), ${o.steps} steps from 0 to all patches; ` +
      `removed pixels are filled by noisy linear imputation (noise σ = ${o.noise} of the input range). ` +
      `The score is the one the explanation explains, S = Σ_M logit of the class, shown divided by |M| (mean logit over M). ` +
      `Reference: ${o.randomOrders} seeded random patch orders per tile. Area = trapezoid over the removed fraction. ` +
      `Lower MoRF area and higher LeRF area mean a more faithful map; LeRF − MoRF summarises both (0 for a random order). ` +
      `Brackets: ${Math.round(o.level * 100)} % paired percentile bootstrap intervals over tiles (${o.resamples} resamples); bold: the interval excludes 0.`,
    '',
  );
  const images: RgbaImage[] = [];
  for (const v of r.variants) {
    md.push(`${h}# ${v.variant === 'full' ? 'Whole image' : 'Context only'} (${VARIANT_TEXT[v.variant]})`, '');
    const mp = v.patches.reduce((s, x) => s + x, 0) / Math.max(1, v.patches.length);
    md.push(`Patches per tile: ${fmt(mp, 1)} on average (min ${Math.min(...v.patches)}).`, '');
    md.push(
      '| condition | MoRF area ↓ | LeRF area ↑ | LeRF − MoRF ↑ | MoRF − random | LeRF − random | empty maps |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    md.push(`| *random order* | *${fmt(v.random.area, d)}* | *${fmt(v.random.area, d)}* | *0* | | | |`);
    for (const c of v.conditions) {
      const find = (m: RoadComparison['measure']) => v.vsRandom.find((x) => x.a === c.label && x.measure === m);
      const cell = (x: RoadComparison | undefined) => (excludesZero(x) ? `**${ci(x, d)}**` : ci(x, d));
      md.push(
        `| ${c.label} | ${fmt(c.morfArea, d)} | ${fmt(c.lerfArea, d)} | ${cell(find('gap'))} | ${cell(find('morf'))} | ${cell(find('lerf'))} | ${c.empty} |`,
      );
    }
    const k = v.kendall;
    md.push(
      '',
      `MoRF ranking: ${k.morfRanking.join(' > ')}. LeRF ranking: ${k.lerfRanking.join(' > ')}. ` +
        `Kendall τ-b between them: **${fmt(k.estimate, d)}** [${fmt(k.low, d)}, ${fmt(k.high, d)}] (1 = the two orders rank the methods alike, −1 = reversed).`,
      '',
    );
    const first = v.conditions[0]?.label;
    const vsFirst = v.pairs.filter((p) => p.a === first && p.measure === 'gap');
    if (vsFirst.length > 0) {
      md.push(
        `LeRF − MoRF of ${first} minus that of each other condition: ` +
          vsFirst.map((p) => `${p.b} ${excludesZero(p) ? `**${ci(p, d)}**` : ci(p, d)}`).join('; ') +
          '.',
        '',
      );
    }
    images.push(variantCharts(v, 'S / |M| (mean logit over M)'));
  }
  md.push(`![ROAD curves: MoRF and LeRF per variant](${figure})`, '');
  return { markdown: md.join('\n'), images: { [figure]: encodePng(vstack(images, 24)) } };
}
