/**
 * The evaluation protocol of docs/evaluation/protocol.md, run end to end on two U-Nets
 * trained on the synthetic TextureMNIST-style set with and without the planted context bias:
 * bias detection, deletion/insertion, cascading randomisation (sanity checks), the layer sweep,
 * α across locations and the cost of each method. Node only (models and tiles come from disk).
 * Each protocol (run, plots, Markdown) is a module of src/eval/protocol/; this file loads the
 * models, picks the tiles and conditions (src/eval/setup.ts) and runs the phases in order. Phase 1
 * is one pass over the tiles shared by bias detection, the curves and the cost, so every
 * explanation is computed once.
 *
 * Everything but the timings is a pure function of the options: tiles are generated from the
 * seed, ties and random orders use seeded streams, and the wasm backend is single-threaded.
 */
import * as tf from '@tensorflow/tfjs';
import type { TextureMnistSample } from '../data/texture-mnist.js';
import { SegGradCamError } from '../errors.js';
import type { Explainer, Explanation } from '../explain.js';
import { mask as maskRegion, type Region } from '../region/region.js';
import { biasShare } from './bias.js';
import { runAlpha } from './protocol/alpha.js';
import { CHECK_OFFSET, runBehaviour } from './protocol/behaviour.js';
import { biasDetectionAuroc } from './protocol/bias-detection.js';
import { CostCounts } from './protocol/cost.js';
import { conditionTileCurves, emptyRandomCurves, randomTileCurves, tileCurves, type TileCurves } from './protocol/curves.js';
import { runSanity } from './protocol/sanity.js';
import { cascadeSteps } from './randomize.js';
import {
  conditionKey,
  type ConditionResult,
  type EvaluationOptions,
  type EvaluationResults,
  type Example,
  type ProgressEvent,
} from './results.js';
import {
  biasRecipe,
  commonInput,
  conditionsFor,
  DEFAULT_METHOD_OPTIONS,
  layerEntries,
  loadModels,
  selectTiles,
  TILE_OFFSET,
  validateOptions,
  type EvalContext,
  type Loaded,
} from './setup.js';

/**
 * Runs the evaluation. `onProgress` is called after each unit of work (an explanation with its
 * curves, or an α pixel).
 */
export async function runEvaluation(options: EvaluationOptions, onProgress?: (p: ProgressEvent) => void): Promise<EvaluationResults> {
  const started = performance.now();
  const phases: Record<string, number> = {};
  const o = options;
  validateOptions(o);
  const labels = o.labels ?? ['biased', 'unbiased'].slice(0, o.models.length);
  const methodOptions = { ...DEFAULT_METHOD_OPTIONS, ...(o.methodOptions ?? {}) };
  const delBaseline = o.deletionBaseline ?? 'black';
  const insBaseline = o.insertionBaseline ?? 'blurred';
  const curveTiles = Math.min(o.curveTiles, o.tiles);
  const sanityTiles = Math.min(o.sanityTiles, o.tiles);
  const alphaTiles = Math.min(o.alphaTiles, o.tiles);

  const loaded: Loaded[] = [];
  try {
    await loadModels(o, labels, loaded);
    const first = loaded[0].explainer;
    const { H, W, C } = commonInput(loaded);
    const bias = biasRecipe(loaded);
    const { biasDigit, biasClass, biasTexture } = bias;
    const { samples, tiles, scanned } = await selectTiles(o, H, W, bias);
    const { layerNames, layers } = layerEntries(o, loaded, H);
    const { methods, conditions } = conditionsFor(o, methodOptions, loaded.length, layerNames, layers);
    const random = emptyRandomCurves(loaded.length, o.steps);

    // Cascade (first model, a LayersModel).
    const adapter0 = first.adapter;
    const weights = adapter0.layersModel?.();
    const cascade = weights ? cascadeSteps(weights) : [];
    const cascadeNote = weights ? undefined : 'the sanity check needs a LayersModel; skipped';

    const alphaPerModel = alphaTiles > 0 && o.alphaPixels > 0;
    const checkTiles = o.checkTiles ?? 0;
    if (!Number.isInteger(checkTiles) || checkTiles < 0)
      throw new SegGradCamError(`checkTiles must be an integer >= 0, got ${checkTiles}`, 'usage');
    const total =
      loaded.length * checkTiles +
      loaded.length * o.tiles * conditions.length +
      cascade.length * sanityTiles * conditions.length +
      (alphaPerModel ? loaded.length * alphaTiles * o.alphaPixels : 0);
    let done = 0;
    const tick = (phase: string) => onProgress?.({ phase, done: ++done, total });

    /** M: the bias digit's pixels of a tile. */
    const biasPixels = (s: TextureMnistSample) => Uint8Array.from(s.labels, (v) => (v === biasClass ? 1 : 0));
    /** A condition's explanation of a tile (M = the bias digit, class = the bias class). */
    const explainCondition = (explainer: Explainer, s: TextureMnistSample, region: Region, cond: ConditionResult) =>
      explainer.explain(s.image, {
        region,
        classId: biasClass,
        layer: cond.layer === 'input' ? undefined : cond.layer,
        method: methods.get(cond.method),
      });
    const example: Example = { tile: tiles[0].index, image: samples[0].image, region: biasPixels(samples[0]), heatmaps: {} };
    const ctx: EvalContext = {
      o,
      loaded,
      first,
      H,
      W,
      C,
      biasDigit,
      biasClass,
      biasTexture,
      samples,
      tiles,
      conditions,
      methods,
      curveTiles,
      sanityTiles,
      alphaTiles,
      checkTiles,
      delBaseline,
      insBaseline,
      tick,
      biasPixels,
      explainCondition,
    };

    // Phase 0: is the shortcut there? The bias texture as an ordinary background (held-out tiles from CHECK_OFFSET on).
    let t0 = performance.now();
    const behaviour = await runBehaviour(ctx);
    phases['behavioural check'] = (performance.now() - t0) / 1000;

    // Phase 1: bias detection, curves and cost, in one pass over the tiles.
    t0 = performance.now();
    const costs = new CostCounts();
    const originals = new Map<string, Float32Array>(); // key|tile → heatmap (first model)
    const curveSettings = { steps: o.steps, randomOrders: o.randomOrders, seed: o.seed, curveTiles };
    for (let mi = 0; mi < loaded.length; mi++) {
      const { explainer, counter, info } = loaded[mi];
      example.heatmaps[info.label] = {};
      for (let ti = 0; ti < samples.length; ti++) {
        const s = samples[ti];
        const m = biasPixels(s);
        const region = maskRegion(W, H, m);
        await explainer.predict(s.image); // the shared forward pass, not charged to any method
        counter.take();
        let curves: TileCurves | null = null;
        if (ti < curveTiles) {
          curves = tileCurves(explainer, s, m, tiles[ti].index, biasClass, [H, W, C], delBaseline, insBaseline);
          await randomTileCurves(curves, random, mi, curveSettings, C);
          counter.take();
        }
        for (const cond of conditions) {
          const key = conditionKey(cond.method, cond.layer);
          const t = performance.now();
          const e: Explanation = await explainCondition(explainer, s, region, cond);
          cond.ms.push(performance.now() - t);
          const c = counter.take();
          if (mi === 0) {
            costs.record(key, c);
            if (ti < sanityTiles && !e.empty) originals.set(`${key}|${ti}`, e.heatmap);
          }
          if (ti === 0) example.heatmaps[info.label][key] = e.heatmap;
          cond.shares[mi].push(biasShare(e.heatmap, s.biasMask));
          if (curves) {
            await conditionTileCurves(curves, cond, key, e.heatmap, mi, curveSettings, C);
            counter.take();
          }
          tick(`bias + curves (${info.label})`);
        }
      }
      explainer.release();
    }
    costs.finish(conditions);
    biasDetectionAuroc(conditions, loaded.length);
    phases['bias, curves, cost'] = (performance.now() - t0) / 1000;

    // Phase 2: cascading randomisation of the first model.
    t0 = performance.now();
    await runSanity(ctx, adapter0, cascade, originals);
    phases['sanity checks'] = (performance.now() - t0) / 1000;

    // Phase 3: α across locations (Seg-Grad-CAM at the bottleneck, single-pixel regions on the bias class).
    t0 = performance.now();
    const alpha = await runAlpha(ctx);
    phases['alpha across locations'] = (performance.now() - t0) / 1000;

    const os = await import('node:os');
    const cpus = os.cpus();
    return {
      options: {
        models: o.models,
        labels,
        tiles: o.tiles,
        curveTiles,
        sanityTiles,
        alphaTiles,
        alphaPixels: o.alphaPixels,
        methods: o.methods,
        layers: layerNames,
        checkTiles,
        steps: o.steps,
        randomOrders: o.randomOrders,
        seed: o.seed,
        methodOptions: Object.fromEntries(o.methods.filter((m) => methodOptions[m]).map((m) => [m, methodOptions[m]])),
        deletionBaseline: delBaseline,
        insertionBaseline: insBaseline,
      },
      dataset: {
        name: 'texture-mnist (seg-grad-cam), held-out split, bias strength 1',
        seed: o.seed,
        size: H,
        biasDigit,
        biasClass,
        biasTexture,
        tileOffset: TILE_OFFSET,
        scanned,
        checkOffset: CHECK_OFFSET,
      },
      models: loaded.map((l) => l.info),
      layers,
      tiles,
      conditions,
      random,
      cascade: {
        model: labels[0],
        steps: cascade.map((c) => ({ name: c.name, layers: c.layers })),
        ...(cascadeNote ? { note: cascadeNote } : {}),
      },
      alpha,
      behaviour,
      example,
      machine: {
        cpus: cpus.length,
        cpu: cpus[0]?.model?.trim() ?? 'unknown',
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        platform: `${os.platform()} ${os.arch()}`,
        node: process.version,
        tfjs: tf.version.tfjs,
        backend: tf.getBackend(),
      },
      timing: { wallSeconds: (performance.now() - started) / 1000, phases },
    };
  } finally {
    for (const l of loaded) {
      l.counter.restore();
      l.explainer.dispose();
    }
  }
}
