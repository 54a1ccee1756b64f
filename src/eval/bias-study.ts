/**
 * One model's part of the bias study (issue 15): the gate's swap test and other-digit rates, and
 * Hoyer's context-bias metrics for every method × layer, on the study's shared held-out tiles. The
 * report (src/eval/bias-report.ts) aggregates the models; each model can run in its own process.
 */
import { BiasTiles } from '../data/bias-tiles.js';
import { loadTextureMnistAssets } from '../data/assets-node.js';
import { createMethod, type Method, type MethodOptions } from '../methods/index.js';
import { loadStudyModel, segmenterOf, type StudyModel } from './bias-models.js';
import { biasStudyTiles, gateTiles, otherDigitTiles, testDigitTiles } from './bias-study-tiles.js';
import { contextBiasModel, type ModelContextBias, type StudyCondition } from './protocol/context-bias.js';
import { gateModel, type ModelGate } from './protocol/gate.js';
import type { BiasArm } from '../data/bias-tiles.js';

export interface StudyOptions {
  /** Bias-digit tiles (gate and metrics). Default 200. */
  tiles: number;
  /** Other-digit tiles for the gate's label rate. Default 200. */
  otherTiles: number;
  /** Tiles per test digit for the CBD matrix (0 = no matrix). Default 10. */
  testTiles: number;
  /** Data seed of the study tiles (independent of the models' training seeds). Default 0. */
  seed: number;
  conditions: StudyCondition[];
  methodOptions: Record<string, MethodOptions>;
}

/** Options capped so that 10 models run in well under 30 minutes on 2 cores. */
export const STUDY_METHOD_OPTIONS: Record<string, MethodOptions> = {
  smoothgrad: { samples: 8, batchSize: 8, seed: 0 },
  'integrated-gradients': { steps: 16, batchSize: 17 },
  'grid-saliency': { iterations: 20, maskResolution: 8 },
};

/** The default conditions: input attributions, and Seg-Grad-CAM (+ Grad-CAM++, HiResCAM) at the bottleneck and a decoder layer. */
export function defaultConditions(bottleneck: string, decoder: string): StudyCondition[] {
  const at = (method: string, layer: string, where: string): StudyCondition => ({ method, layer, label: `${method} @ ${where}` });
  return [
    at('saliency', 'input', 'input'),
    at('smoothgrad', 'input', 'input'),
    at('integrated-gradients', 'input', 'input'),
    at('grid-saliency', 'input', 'input'),
    at('seg-grad-cam', bottleneck, 'bottleneck'),
    at('seg-grad-cam', decoder, 'decoder'),
    at('grad-cam++', bottleneck, 'bottleneck'),
    at('hires-cam', bottleneck, 'bottleneck'),
  ];
}

export interface ModelStudy {
  arm: BiasArm;
  seed: number;
  dir: string;
  training: StudyModel['training'];
  bottleneck: string;
  gate: ModelGate;
  context: ModelContextBias | null;
  seconds: { gate: number; context: number };
}

/** The study tiles for a tile size (every model of the study sees these). */
export async function studyTileSet(size: number, o: Pick<StudyOptions, 'tiles' | 'otherTiles' | 'testTiles' | 'seed'>, biasDigit = 3) {
  const ds = new BiasTiles(await loadTextureMnistAssets(), { arm: 'strong', seed: o.seed, size, biasDigit });
  const study = biasStudyTiles(ds, o.tiles);
  const others = otherDigitTiles(ds, o.otherTiles);
  const tests = o.testTiles > 0 ? Array.from({ length: 10 }, (_, d) => testDigitTiles(ds, d, o.testTiles)) : [];
  return { study, gate: gateTiles(study, others), tests };
}

/**
 * Studies one model folder. `conditions` may name the layers 'bottleneck' and 'decoder'; they are
 * resolved on the model (decoder = the last decoder layer at half the input size).
 */
export async function studyModel(
  entry: { arm: BiasArm; seed: number; dir: string },
  o: StudyOptions,
  onTick?: () => void,
  withContext = true,
): Promise<ModelStudy> {
  const biasClass = 4;
  const model = await loadStudyModel(entry, biasClass);
  try {
    const size = model.explainer.adapter.input.height;
    const tiles = await studyTileSet(size, o);
    const t0 = performance.now();
    const gate = await gateModel(segmenterOf(model), tiles.gate, biasClass, { arm: entry.arm, seed: entry.seed }, { resamples: 2000 });
    const t1 = performance.now();
    let context: ModelContextBias | null = null;
    const bottleneck = model.explainer.bottleneck;
    if (withContext) {
      const layers = model.explainer.adapter.layers();
      const at = layers.findIndex((l) => l.name === bottleneck);
      const decoderLayers = layers.slice(at + 1).filter((l) => l.outputShape[1] === size / 2);
      const decoder = decoderLayers.length ? decoderLayers[decoderLayers.length - 1].name : layers[layers.length - 2].name;
      const conditions = o.conditions.map((c) => ({
        ...c,
        layer: c.layer === 'bottleneck' ? bottleneck : c.layer === 'decoder' ? decoder : c.layer,
      }));
      const methods = new Map<string, Method>(
        [...new Set(conditions.map((c) => c.method))].map((m) => [m, createMethod(m, o.methodOptions[m])]),
      );
      context = await contextBiasModel(model.explainer, tiles.study, tiles.tests, conditions, methods, biasClass, onTick);
    }
    const t2 = performance.now();
    return {
      ...entry,
      training: model.training,
      bottleneck,
      gate,
      context,
      seconds: { gate: (t1 - t0) / 1000, context: (t2 - t1) / 1000 },
    };
  } finally {
    model.explainer.dispose();
  }
}
