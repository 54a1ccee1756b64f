/** Opening the model of a batch run (in the main thread or in each worker: one Explainer per thread). */
import { setupBackend, type BackendName } from '../backend/index.js';
import { SegGradCamError } from '../errors.js';
import type { Explainer } from '../explain.js';
import { readLabelsFile } from '../io/labels-node.js';
import { methodNames } from '../methods/index.js';
import { loadExplainer } from '../node.js';
import { resolveClass, type BatchPlan } from './plan.js';

/** Plain data (it crosses to worker threads and through the queue). */
export interface ModelSpec {
  /** A TF.js model.json or an .onnx file. */
  model: string;
  /** A labels file (default: the model's metadata). */
  labels?: string;
  inputRange?: [number, number];
  /** Graph/ONNX models: the output node to explain. */
  output?: string;
  /** TF.js backend (default wasm). */
  backend?: BackendName;
  /**
   * ONNX models: ONNX Runtime's intra-op threads per model (default: its own, one per core). A pool
   * of n worker threads sets cores / n, so n models do not run 2n threads on n cores.
   */
  threads?: number;
}

export async function openModel(spec: ModelSpec): Promise<Explainer> {
  await setupBackend(spec.backend ?? 'wasm');
  const classNames = spec.labels ? await readLabelsFile(spec.labels) : undefined;
  if (/\.onnx$/i.test(spec.model)) {
    const { loadOnnxExplainer } = await import('../engine/onnx/node.js');
    return loadOnnxExplainer(spec.model, {
      classNames,
      inputRange: spec.inputRange,
      outputName: spec.output,
      ...(spec.threads ? { sessionOptions: { intraOpNumThreads: spec.threads } } : {}),
    });
  }
  return loadExplainer(spec.model, { classNames, inputRange: spec.inputRange, outputNode: spec.output });
}

/** Refuses a plan the model cannot answer (unknown class, layer or method) before any item runs. */
export function checkPlan(explainer: Explainer, plan: BatchPlan): void {
  const names = explainer.options.classNames;
  if (plan.classes !== 'present') for (const c of plan.classes) if (c !== 'present') resolveClass(c, names, explainer.classCount);
  for (const c of plan.ignoreClasses ?? []) resolveClass(c, names, explainer.classCount);
  const layers = new Set(explainer.layers().map((l) => l.name));
  for (const l of plan.layers ?? [])
    if (l !== 'bottleneck' && l !== 'input' && !layers.has(l))
      throw new SegGradCamError(`unknown layer '${l}' (see \`seg-grad-cam layers\`)`, 'layer');
  const known = methodNames();
  for (const m of plan.methods ?? [])
    if (!known.includes(m)) throw new SegGradCamError(`unknown method '${m}' (one of ${known.join(', ')})`, 'usage');
}
