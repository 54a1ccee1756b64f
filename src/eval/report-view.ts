/**
 * What the report's sections share: the values derived once from the results (labels, the
 * bottleneck, the chance level, Seg-Grad-CAM at the bottleneck, the random-order AUCs, …) and the
 * number formats of the Markdown.
 */
import type { Rgb } from '../render/colormap.js';
import { categorical } from './canvas.js';
import type { ConditionResult, EvaluationResults } from './results.js';
import { mean, std } from './stats.js';

export interface ReportView {
  r: EvaluationResults;
  /** Model labels, biased first. */
  labels: string[];
  /** Whether there is an unbiased control. */
  two: boolean;
  bottleneck: string;
  /** The bias texture's mean area share: what a uniform heatmap would put on it. */
  chance: number;
  find: (method: string, layer: string) => ConditionResult | undefined;
  /** Seg-Grad-CAM at the bottleneck. */
  sgc: ConditionResult | undefined;
  /** Mean deletion and insertion AUC of the random orders, per model. */
  randDel: number[];
  randIns: number[];
  steps: EvaluationResults['cascade']['steps'];
  /** The method names, in the order of the conditions. */
  methods: string[];
  methodColor: (m: string) => Rgb;
  /** The layers with conditions, then 'input' if any method attributes to the input. */
  layerCols: string[];
}

export function reportView(r: EvaluationResults): ReportView {
  const labels = r.models.map((m) => m.label);
  const two = r.models.length > 1;
  const bottleneck = r.layers.find((l) => l.role === 'bottleneck')?.name ?? r.layers[0]?.name;
  const chance = mean(r.tiles.map((t) => t.biasArea));
  const find = (method: string, layer: string) => r.conditions.find((c) => c.method === method && c.layer === layer);
  const sgc = find('seg-grad-cam', bottleneck);
  const randDel = r.random.deletion.map((v) => mean(v));
  const randIns = r.random.insertion.map((v) => mean(v));
  const steps = r.cascade.steps;
  const methods = [...new Set(r.conditions.map((c) => c.method))];
  const methodColor = (m: string): Rgb => categorical(methods.indexOf(m));
  const layerCols = [...r.layers.map((l) => l.name), 'input'].filter((l) => r.conditions.some((c) => c.layer === l));
  return { r, labels, two, bottleneck, chance, find, sgc, randDel, randIns, steps, methods, methodColor, layerCols };
}

export const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
export const pm = (values: number[], digits = 3): string => {
  const m = mean(values);
  const s = std(values);
  return Number.isFinite(m) ? `${m.toFixed(digits)}${Number.isFinite(s) ? ` ± ${s.toFixed(digits)}` : ''}` : 'n/a';
};
export const nanCount = (values: number[]): number => values.filter((v) => !Number.isFinite(v)).length;
export const BLACK: Rgb = [20, 20, 20];
