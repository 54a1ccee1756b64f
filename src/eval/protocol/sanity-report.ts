/**
 * The Markdown section and the figure of a sanity-check run (sanity-checks.ts): the verdict per
 * condition, the four similarities along the cascade and per independently re-initialised block,
 * the logit test, and the counts of empty maps, which are never scored.
 */
import { encodePng } from '../../io/codec.js';
import type { RgbaImage } from '../../image.js';
import { categorical, hstack, vstack } from '../canvas.js';
import { lineChart } from '../plot.js';
import { fmt } from '../report-view.js';
import type { SanityConditionResult, SanityResult, SanityStepResult } from './sanity-checks.js';
import type { ReportOptions } from './road-report.js';

type Measure = 'absSpearman' | 'spearman' | 'ssim' | 'hog';
const MEASURE_LABEL: Record<Measure, string> = {
  absSpearman: 'Spearman of |maps|',
  spearman: 'Spearman (signed)',
  ssim: 'SSIM',
  hog: 'HOG correlation',
};

function chart(r: SanityResult, mode: 'cascading' | 'independent', measure: Measure): RgbaImage {
  const names = r.steps.map((s) => s.name);
  const xs = mode === 'cascading' ? Array.from({ length: names.length + 1 }, (_, j) => j) : names.map((_, j) => j + 1);
  const xTicks = [...(mode === 'cascading' ? [{ value: 0, label: 'trained' }] : []), ...names.map((n, j) => ({ value: j + 1, label: n }))];
  return lineChart({
    title: `${mode === 'cascading' ? 'Cascading (output down)' : 'Independent (one block)'}: ${MEASURE_LABEL[measure]}`,
    xLabel: mode === 'cascading' ? 're-initialised from the output down to' : 're-initialised block',
    yLabel: `${MEASURE_LABEL[measure]} vs trained`,
    series: r.conditions.map((c, i) => ({
      label: c.label,
      color: categorical(i),
      xs,
      ys: [...(mode === 'cascading' ? [1] : []), ...c[mode].map((s) => s.mean[measure])],
      markers: true,
      dash: c.method === 'custom',
    })),
    xTicks,
    yRange: [-0.5, 1],
    width: 620,
    height: 440,
  });
}

const stepCell = (s: SanityStepResult, d: number) =>
  `${fmt(s.mean.absSpearman, d)} / ${fmt(s.mean.ssim, d)}${s.emptyRandomised > 0 ? ` (${s.emptyRandomised} empty)` : ''}`;

function verdictText(c: SanityConditionResult): string {
  const mark = (v: string) => (v === 'fail' ? '**FAIL**' : v);
  return `${mark(c.verdict.cascading)} / ${mark(c.verdict.logit)}`;
}

/** The section (Markdown) and its figure (PNG bytes by file name). */
export function sanityReport(r: SanityResult, options: ReportOptions = {}): { markdown: string; images: Record<string, Uint8Array> } {
  const d = options.digits ?? 2;
  const h = '#'.repeat(options.level ?? 2);
  const figure = options.figure ?? 'sanity-checks.png';
  const o = r.options;
  const md: string[] = [];
  const kinds = [...new Set(r.reinit.map((x) => `${x.weight}: ${x.initializer}`))];
  md.push(`${h} Sanity checks: model randomisation and the logit test`, '');
  md.push(
    `Adebayo et al. (2018) on ${r.tiles.length} tiles and ${o.seeds.length} seeds (${o.seeds.join(', ')}). Blocks (output first): ${r.steps.map((s) => s.name).join(', ')}. ` +
      `${o.modes.includes('cascading') ? 'Cascading: the blocks are re-initialised cumulatively from the output down. ' : ''}` +
      `${o.modes.includes('independent') ? 'Independent: one block at a time, the others trained. ' : ''}` +
      `Every weight of a block is drawn again from the initializer its layer declares — ${kinds.join('; ')} — so batch-norm parameters and moving statistics are reset too. ` +
      `Similarity to the trained model's map: Spearman rank correlation of the signed and of the absolute maps, SSIM (7x7 uniform windows) and the correlation of HOG features of the absolute maps scaled to [0, 1]. ` +
      `All-zero maps have no ranking: they are counted apart and not scored. ` +
      `Logit test: the same M explained for another class (the runner-up by Σ_M logits) must give a different map. ` +
      `A condition fails a check when its mean Spearman of the absolute maps stays ≥ ${o.threshold} in magnitude (with every block re-initialised, or between the two classes; a strongly negative ρ means an inverted map that still follows the image).`,
    '',
  );
  md.push(
    '| condition | verdict (cascade / logit) | empty on trained | fully re-initialised: Spearman of \\|maps\\| [CI] | Spearman | SSIM | HOG | logit test: Spearman of \\|maps\\| / SSIM |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const c of r.conditions) {
    const last = c.cascading[c.cascading.length - 1];
    md.push(
      `| ${c.label} | ${verdictText(c)} | ${c.emptyOriginal} | ${last ? `${fmt(last.mean.absSpearman, d)} [${fmt(last.absSpearmanCi.low, d)}, ${fmt(last.absSpearmanCi.high, d)}]` : 'n/a'} | ` +
        `${last ? fmt(last.mean.spearman, d) : 'n/a'} | ${last ? fmt(last.mean.ssim, d) : 'n/a'} | ${last ? fmt(last.mean.hog, d) : 'n/a'} | ` +
        `${c.logit ? `${fmt(c.logit.mean.absSpearman, d)} / ${fmt(c.logit.mean.ssim, d)}${c.logit.emptyRandomised ? ` (${c.logit.emptyRandomised} empty)` : ''}` : 'n/a'} |`,
    );
  }
  md.push('');
  for (const mode of ['cascading', 'independent'] as const) {
    if (!o.modes.includes(mode)) continue;
    md.push(
      `${h}# ${mode === 'cascading' ? 'Cascading randomisation' : 'Independent randomisation'}: Spearman of |maps| / SSIM per step`,
      '',
      `| condition | ${r.steps.map((s) => s.name).join(' | ')} |`,
      `|---|${r.steps.map(() => '---:|').join('')}`,
    );
    for (const c of r.conditions) md.push(`| ${c.label} | ${c[mode].map((s) => stepCell(s, d)).join(' | ')} |`);
    md.push('');
  }
  md.push(`![sanity checks: similarity to the trained model's maps](${figure})`, '');
  const rows: RgbaImage[] = [];
  for (const mode of ['cascading', 'independent'] as const)
    if (o.modes.includes(mode)) rows.push(hstack([chart(r, mode, 'absSpearman'), chart(r, mode, 'ssim')], 12));
  const images: Record<string, Uint8Array> = rows.length > 0 ? { [figure]: encodePng(vstack(rows, 16)) } : {};
  return { markdown: md.join('\n'), images };
}
