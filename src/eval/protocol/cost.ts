/**
 * Protocol 6, cost: model passes per explanation (counted by the instrumented adapter,
 * src/eval/cost.ts) and the median wall time. Counting, summary table and section.
 */
import { conditionKey, type ConditionResult, type EvaluationResults } from '../results.js';
import type { PassCounts } from '../cost.js';
import { fmt, type ReportView } from '../report-view.js';
import { median } from '../stats.js';

/** The passes of every explanation of the first model, per condition key; their medians go into the conditions. */
export class CostCounts {
  private readonly counts = new Map<string, { forward: number[]; backward: number[] }>();

  record(key: string, c: PassCounts): void {
    const k = this.counts.get(key) ?? { forward: [], backward: [] };
    k.forward.push(c.forward);
    k.backward.push(c.backward);
    this.counts.set(key, k);
  }

  finish(conditions: ConditionResult[]): void {
    for (const cond of conditions) {
      const k = this.counts.get(conditionKey(cond.method, cond.layer));
      cond.forward = median(k?.forward ?? []);
      cond.backward = median(k?.backward ?? []);
    }
  }
}

export function costTable(r: EvaluationResults): string[] {
  const layerCols = [...r.layers.map((l) => l.name)];
  const methods = [...new Set(r.conditions.map((c) => c.method))];
  const out = [`| method | forward passes | backward passes | median ms: ${layerCols.join(' · ')} (or input) |`, '|---|---:|---:|---:|'];
  for (const m of methods) {
    const cs = r.conditions.filter((c) => c.method === m);
    const fw = [...new Set(cs.map((c) => c.forward))];
    const bw = [...new Set(cs.map((c) => c.backward))];
    const ms =
      cs[0].layer === 'input'
        ? fmt(median(cs[0].ms), 0)
        : layerCols.map((l) => fmt(median(cs.find((c) => c.layer === l)?.ms ?? []), 0)).join(' · ');
    out.push(`| ${m} | ${fw.map((v) => fmt(v, 0)).join(' / ')} | ${bw.map((v) => fmt(v, 0)).join(' / ')} | ${ms} |`);
  }
  return out;
}

/** Summary: the cost table. */
export function costSummary(v: ReportView, md: string[]): void {
  const { r } = v;
  md.push(
    '',
    "**Cost** per explanation (after the image's one shared forward pass; median wall time over all tiles and models — timing, not reproducible):",
    '',
  );
  md.push(...costTable(r));
  md.push('');
}

/** Section 6: cost. */
export function costSection(v: ReportView, md: string[]): void {
  const { r } = v;
  // 6. Cost.
  md.push('## 6. Cost', '');
  md.push(
    'Model passes per explanation, counted by instrumenting the adapter (a batched call counts one pass per image; a layer gradient re-runs only the layers downstream of the layer, then back-propagates, and counts as one backward pass), ' +
      "and the median wall time per explanation over every tile and model. The image's forward pass is shared by all methods and not counted.",
    '',
  );
  md.push(...costTable(r), '');
}
