/**
 * Protocol 1, bias detection: for M = the bias digit's pixels, the share of positive heatmap mass on
 * the bias texture per tile and model (the share itself: src/eval/bias.ts), and the AUROC that
 * separates the biased model's shares from the unbiased one's. Run, plot, summary and section.
 */
import type { ConditionResult } from '../results.js';
import { auroc, mean } from '../stats.js';
import { encodePng } from '../../io/codec.js';
import { barChart } from '../plot.js';
import { categorical } from '../canvas.js';
import { fmt, nanCount, pm, type ReportView } from '../report-view.js';

/** The AUROC of each condition: the first model's per-tile shares against the second's (empty maps left out). */
export function biasDetectionAuroc(conditions: ConditionResult[], models: number): void {
  for (const cond of conditions) {
    if (models > 1) {
      const pos = cond.shares[0].filter(Number.isFinite);
      const neg = cond.shares[1].filter(Number.isFinite);
      cond.auroc = auroc(pos, neg);
    }
  }
}

/** bias-shares.png: the share of positive heatmap mass on the bias texture per condition and model. */
export function biasDetectionPlots(v: ReportView, images: Record<string, Uint8Array>): void {
  const { r, labels, chance } = v;
  // Bias shares per condition and model.
  images['bias-shares.png'] = encodePng(
    barChart({
      title: `Share of positive heatmap mass on the bias texture (M = digit ${r.dataset.biasDigit}, ${r.tiles.length} tiles)`,
      rows: r.conditions.map((c) => ({ label: `${c.method} @ ${c.layer}`, values: c.shares.map((s) => mean(s)) })),
      series: labels.map((l, i) => ({ label: `${l} model`, color: categorical(i) })),
      xLabel: 'mean share of positive mass on the bias texture',
      xRange: [0, 1],
      refLines: [{ value: chance, label: `area of the bias texture ${fmt(chance, 2)}`, color: [200, 0, 0] }],
      width: 1000,
    }),
  );
}

/** Summary line: bias detection. */
export function biasDetectionSummary(v: ReportView, md: string[]): void {
  const { r, two, bottleneck, chance, sgc } = v;
  if (two && sgc) {
    const byAuroc = [...r.conditions].filter((c) => Number.isFinite(c.auroc)).sort((a, b) => b.auroc - a.auroc);
    const sgcLayers = r.conditions.filter((c) => c.method === 'seg-grad-cam');
    md.push(
      `* **Bias detection** (M = the pixels of digit ${r.dataset.biasDigit}, class ${r.dataset.biasClass}, on '${r.dataset.biasTexture}' tiles; share of positive heatmap mass on the bias texture; a uniform map would give ${fmt(chance, 3)}): ` +
        `Seg-Grad-CAM at the bottleneck (${bottleneck}) gives **${fmt(mean(sgc.shares[0]))}** for the biased model vs **${fmt(mean(sgc.shares[1]))}** for the unbiased one, **AUROC ${fmt(sgc.auroc)}**. ` +
        `Seg-Grad-CAM at the other layers: ${sgcLayers
          .filter((c) => c !== sgc)
          .map((c) => `${c.layer} AUROC ${fmt(c.auroc)} (${fmt(mean(c.shares[0]))} vs ${fmt(mean(c.shares[1]))})`)
          .join('; ')}. ` +
        `Highest AUROCs: ${byAuroc
          .slice(0, 4)
          .map((c) => `${c.method} @ ${c.layer} ${fmt(c.auroc)}`)
          .join(', ')}; lowest: ${byAuroc
          .slice(-2)
          .map((c) => `${c.method} @ ${c.layer} ${fmt(c.auroc)}`)
          .join(', ')}.`,
    );
  }
}

/** Section 1: bias detection. */
export function biasDetectionSection(v: ReportView, md: string[]): void {
  const { r, labels, two, chance } = v;
  // 1. Bias detection.
  md.push('## 1. Bias detection', '');
  md.push(
    `For each tile, M = the pixels of digit ${r.dataset.biasDigit}; the score is the share of the heatmap's positive mass that lies on the bias texture (the background pixels of the '${r.dataset.biasTexture}' tile). ` +
      `The biased model only ever saw digit ${r.dataset.biasDigit} on '${r.dataset.biasTexture}'; the unbiased one saw '${r.dataset.biasTexture}' under every digit. A method that exposes the shortcut gives higher shares for the biased model: ` +
      `the AUROC (Mann–Whitney) separates the biased model's per-tile shares from the unbiased model's (1 = always higher, 0.5 = no difference). ` +
      `Empty heatmaps (no positive mass) have no share and are left out (counted in the last column).`,
    '',
  );
  const biasHead = two
    ? `| method | layer | share, ${labels[0]} | share, ${labels[1]} | AUROC | empty (${labels.join('/')}) |`
    : `| method | layer | share, ${labels[0]} | empty |`;
  md.push(biasHead, two ? '|---|---|---:|---:|---:|---:|' : '|---|---|---:|---:|');
  for (const c of r.conditions) {
    const best =
      two && Number.isFinite(c.auroc) && c.auroc === Math.max(...r.conditions.filter((x) => x.method === c.method).map((x) => x.auroc));
    md.push(
      two
        ? `| ${c.method} | ${c.layer} | ${pm(c.shares[0])} | ${pm(c.shares[1])} | ${best && r.conditions.filter((x) => x.method === c.method).length > 1 ? `**${fmt(c.auroc)}**` : fmt(c.auroc)} | ${c.shares.map(nanCount).join('/')} |`
        : `| ${c.method} | ${c.layer} | ${pm(c.shares[0])} | ${nanCount(c.shares[0])} |`,
    );
  }
  md.push(
    '',
    `Chance level (the bias texture's area): ${fmt(chance)}. Bold: the method's best layer.`,
    '',
    '![bias shares](bias-shares.png)',
    '',
  );
}
