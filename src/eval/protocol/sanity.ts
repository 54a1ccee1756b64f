/**
 * Protocol 3, sanity checks (Adebayo et al. 2018) — LEGACY, kept so earlier reports compare; the
 * checks of record are sanity-checks.ts (docs/evaluation/faithfulness.md). Cascading randomisation of the first model's
 * blocks from the output down; the Spearman correlation of each condition's heatmap with the
 * trained model's. Run, plot, summary and section.
 */
import type { ModelAdapter } from '../../engine/contract.js';
import { mask as maskRegion } from '../../region/region.js';
import { hash32 } from '../../data/prng.js';
import { randomizeLayers, snapshotWeights, type CascadeStep } from '../randomize.js';
import type { EvalContext } from '../setup.js';
import { conditionKey, type ConditionResult } from '../results.js';
import { mean, spearman } from '../stats.js';
import { encodePng } from '../../io/codec.js';
import type { RgbaImage } from '../../image.js';
import { lineChart } from '../plot.js';
import { hstack, vstack } from '../canvas.js';
import { fmt, type ReportView } from '../report-view.js';

/**
 * Cascading randomisation of the first model: its blocks re-initialised from the output down, every
 * condition explained again on the sanity tiles at each step, and compared with `originals`
 * (key|tile → heatmap of the trained model). The weights are restored afterwards.
 */
export async function runSanity(
  ctx: EvalContext,
  adapter0: ModelAdapter,
  cascade: CascadeStep[],
  originals: Map<string, Float32Array>,
): Promise<void> {
  const { o, loaded, first, W, H, samples, conditions, sanityTiles, tick, biasPixels, explainCondition } = ctx;
  const model = adapter0.layersModel?.();
  if (model && sanityTiles > 0) {
    const snapshot = snapshotWeights(model);
    try {
      for (let step = 0; step < cascade.length; step++) {
        randomizeLayers(model, cascade[step].layers, hash32(o.seed, 0x5a17));
        first.release();
        for (const cond of conditions) {
          cond.sanity.push([]);
          cond.sanityEmpty.push(0);
        }
        for (let ti = 0; ti < sanityTiles; ti++) {
          const s = samples[ti];
          const region = maskRegion(W, H, biasPixels(s));
          for (const cond of conditions) {
            const key = conditionKey(cond.method, cond.layer);
            const e = await explainCondition(first, s, region, cond);
            const orig = originals.get(`${key}|${ti}`);
            // An empty randomised map has no ranking left to agree with the original: 0.
            if (orig) cond.sanity[step].push(e.empty ? 0 : spearman(orig, e.heatmap));
            if (e.empty) cond.sanityEmpty[step]++;
            tick(`sanity: randomised to ${cascade[step].name}`);
          }
        }
      }
    } finally {
      snapshot.restore();
      snapshot.dispose();
      first.release();
      loaded[0].counter.take();
    }
  }
}

/** Mean Spearman correlation per cascade step (over the sanity tiles). */
export function sanityMeans(c: ConditionResult): number[] {
  return c.sanity.map((row) => mean(row));
}

/** sanity.png: the Spearman correlation along the cascade, one chart per layer (and one for input attributions). */
export function sanityPlots(v: ReportView, images: Record<string, Uint8Array>): void {
  const { r, steps, methodColor, layerCols } = v;
  // Sanity checks: one chart per layer (and one for input attributions).
  if (steps.length > 0 && r.options.sanityTiles > 0) {
    const xs = Array.from({ length: steps.length + 1 }, (_, j) => j);
    const xTicks = [{ value: 0, label: 'original' }, ...steps.map((s, j) => ({ value: j + 1, label: s.name }))];
    const charts = layerCols.map((l) =>
      lineChart({
        title: l === 'input' ? 'Input attributions' : `CAM methods at ${l}`,
        xLabel: 'randomised from the output down to',
        yLabel: 'Spearman vs original',
        series: r.conditions
          .filter((c) => c.layer === l)
          .map((c) => ({ label: c.method, color: methodColor(c.method), xs, ys: [1, ...sanityMeans(c)], markers: true })),
        xTicks,
        yRange: [-0.5, 1],
        width: 820,
        height: 470,
      }),
    );
    const rows: RgbaImage[] = [];
    for (let i = 0; i < charts.length; i += 2) rows.push(hstack(charts.slice(i, i + 2), 16));
    images['sanity.png'] = encodePng(vstack(rows, 16));
  }
}

/** Summary line: sanity checks. */
export function sanitySummary(v: ReportView, md: string[]): void {
  const { r, sgc, steps } = v;
  if (steps.length > 0 && r.options.sanityTiles > 0 && sgc) {
    const s = sanityMeans(sgc);
    const fails = r.conditions.filter((c) => {
      const m = sanityMeans(c);
      return m[m.length - 1] > 0.5;
    });
    md.push(
      `* **Sanity checks** (cascading randomisation of the ${r.cascade.model} model, ${r.options.sanityTiles} tiles, Spearman rank correlation with the original heatmap): ` +
        `Seg-Grad-CAM at the bottleneck falls to **${fmt(s[0], 2)}** after randomising ${steps[0].name}, **${fmt(s[Math.min(steps.length - 1, 5)], 2)}** after ${steps[Math.min(steps.length - 1, 5)].name} and **${fmt(s[s.length - 1], 2)}** with every layer randomised. ` +
        (fails.length > 0
          ? `Still above 0.5 with every layer randomised (their maps follow the image or the region, not the weights): ${fails.map((c) => `${c.method} @ ${c.layer} ${fmt(sanityMeans(c).slice(-1)[0], 2)}`).join(', ')}.`
          : 'No method stays above 0.5 with every layer randomised.'),
    );
  }
}

/** Section 3: sanity checks. */
export function sanitySection(v: ReportView, md: string[]): void {
  const { r, steps } = v;
  // 3. Sanity checks.
  if (steps.length > 0 && r.options.sanityTiles > 0) {
    md.push('## 3. Sanity checks: cascading randomisation (legacy)', '');
    md.push(
      `The ${r.cascade.model} model's blocks are re-initialised from the output down (each trainable weight tensor re-drawn from a seeded normal with its own mean and standard deviation; batch-norm moving statistics kept), cumulatively; ` +
        `after each step every method explains the same tiles again. Cell = mean Spearman rank correlation with the original heatmap over ${r.options.sanityTiles} tiles ` +
        `(an empty randomised map counts as 0; the number of empty maps in brackets). A faithful method's correlation must fall once the layers it depends on are randomised. ` +
        '*Legacy check*, kept so earlier reports compare: one seed, cascading only, batch-norm statistics kept, Spearman only, empty maps scored as 0. ' +
        'The sanity checks of record are src/eval/protocol/sanity-checks.ts (docs/evaluation/faithfulness.md).',
      '',
    );
    md.push(`| method | layer | ${steps.map((s) => s.name).join(' | ')} |`, `|---|---|${steps.map(() => '---:|').join('')}`);
    for (const c of r.conditions) {
      const m = sanityMeans(c);
      md.push(
        `| ${c.method} | ${c.layer} | ${m.map((v, j) => `${fmt(v, 2)}${c.sanityEmpty[j] ? ` (${c.sanityEmpty[j]})` : ''}`).join(' | ')} |`,
      );
    }
    md.push('', `Blocks: ${steps.map((s) => `${s.name} = ${s.layers.join(', ')}`).join('; ')}.`, '', '![sanity checks](sanity.png)', '');
  }
}
