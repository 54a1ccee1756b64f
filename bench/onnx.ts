/**
 * `node --import tsx bench/onnx.ts`: the 128x256 U-Net (4 levels, base 16, 1.94 M parameters,
 * generated from a seed by scripts/onnx/unet.ts) through ONNX Runtime with the compiled gradient
 * graph. Medians over BENCH_RUNS runs (default 15) after a warm-up, all in one process. When
 * Debian's python3-torch is importable, the same architecture and weights in PyTorch, explained
 * the pytorch-grad-cam way (hooks + loss.backward()), OPENBLAS_NUM_THREADS=1, in its own process
 * but timed in the same turns as ours (scripts/onnx/reference.ts startTorchServer).
 * Not a test: nothing is asserted.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { setupBackend } from '../src/backend/index.js';
import { Explainer } from '../src/explain.js';
import type { RgbaImage } from '../src/image.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { INPUT_LAYER, type Objective } from '../src/engine/contract.js';
import { DEFAULT_SESSION_OPTIONS, OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { COTANGENT } from '../src/engine/onnx/gradient.js';
import { nchwToNhwc } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { regionObjective } from '../src/region/objective.js';
import { findTorch, startTorchServer, uniform, type TorchServer } from '../scripts/onnx/reference.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { unetLayersModel } from '../scripts/onnx/unet-tfjs.js';
import { machineLine, median, timeInterleaved, timeRuns } from './timing.js';
import { bench1024 } from './onnx-1024.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
/** Explanations in the ONNX memory soak (BENCH_SOAK; 0 to skip). */
const SOAK = Number(process.env.BENCH_SOAK ?? 1000);
/** ONNX Runtime intra-op threads (ORT_THREADS; default: ONNX Runtime's choice, one per core). */
const THREADS = process.env.ORT_THREADS ? Number(process.env.ORT_THREADS) : undefined;
const SESSION = { ...DEFAULT_SESSION_OPTIONS, ...(THREADS ? { intraOpNumThreads: THREADS } : {}) };
const time = async (fn: () => Promise<unknown>, runs = RUNS): Promise<number> => median(await timeRuns(fn, runs, 2));

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
/** The region of every first-explanation row: the 64x32 box at the origin (the image is the model's input size). */
const BOX = { kind: 'box', x0: 0, y0: 0, x1: 63, y1: 31 } as const;

async function main() {
  await setupBackend('wasm'); // TF.js (pre- and post-processing around ONNX Runtime) on wasm, as the CLI runs it
  console.log(machineLine());
  console.log(`onnxruntime-node ${ort.env.versions?.common ?? '?'}, intra-op threads ${THREADS ?? 'default'}, runs per median ${RUNS}`);

  const unet = buildUnet();
  const bytes = encodeModel(unet.model);
  const ad = await OnnxModelAdapter.create(bytes, nodeRuntime, { sessionOptions: SESSION });
  const explainer = new Explainer(ad);
  const bottleneck = explainer.bottleneck;
  const { height: H, width: W, channels: C } = ad.input;
  const nchw = uniform(C * H * W, 3, 0, 1);
  const x = tf.tensor4d(nchwToNhwc(nchw, 1, C, H, W), [1, H, W, C]) as tf.Tensor4D;
  const boxObjective = (i: number, cls: number): Objective => {
    const mask = new Uint8Array(H * W);
    const x0 = (i * 37) % (W - 64);
    const y0 = (i * 19) % (H - 32);
    for (let y = y0; y < y0 + 32; y++) for (let xx = x0; xx < x0 + 64; xx++) mask[y * W + xx] = 1;
    return regionObjective(ad.output, cls, mask, 'logits');
  };
  const obj = boxObjective(0, 3);
  console.log(
    `model: U-Net ${H}x${W}, base ${unet.spec.base}, ${unet.params.reduce((s, p) => s + p.data.length, 0)} parameters; bottleneck '${bottleneck}' ${JSON.stringify(ad.layers().find((l) => l.name === bottleneck)?.outputShape)}`,
  );

  const dispose = (g: { activations: tf.Tensor; gradients: tf.Tensor }) => tf.dispose([g.activations, g.gradients]);
  // Compile everything once (sessions are cached per model and layer).
  const warm = await ad.forward(x);
  dispose(await warm.gradient(bottleneck, obj));
  warm.dispose();

  const plain = await ort.InferenceSession.create(bytes, SESSION);
  const feeds = { [ad.inputName]: new ort.Tensor('float32', nchw, ad.inputDims) };
  // The same with a forward pass that caches only the bottleneck and what its backward reads.
  const lean = await OnnxModelAdapter.create(bytes, nodeRuntime, { sessionOptions: SESSION, cacheLayers: [bottleneck] });
  // The same adapter with windows off: backward parts on the whole map.
  const whole = await OnnxModelAdapter.create(bytes, nodeRuntime, { sessionOptions: SESSION, windowMaxArea: 0 });
  const forwardThenGradient = (adapter: OnnxModelAdapter, prime?: Parameters<OnnxModelAdapter['forward']>[1]) => async () => {
    const pass = await adapter.forward(x, prime);
    dispose(await pass.gradient(bottleneck, obj));
    pass.dispose();
  };
  // The fused augmented graph: input + cotangent → A, ∂S/∂A in one ONNX Runtime run.
  const gg = ad.gradientGraph(bottleneck);
  const fused = await ort.InferenceSession.create(encodeModel(gg.model), SESSION);
  const cot = new ort.Tensor('float32', ad.cotangentNchw(obj.weights), [1, 8, H, W]);
  // The whole Explainer path on an image (resize, forward, gradient, CAM, heatmap).
  const image = { width: W, height: H, data: new Uint8ClampedArray(W * H * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7919) % 256)) };
  const known = { layer: bottleneck, objective: obj, objectiveOf: () => obj };
  const requests16 = Array.from({ length: 16 }, (_, i) => ({
    region: {
      kind: 'box',
      x0: (i * 37) % (W - 64),
      y0: (i * 19) % (H - 32),
      x1: ((i * 37) % (W - 64)) + 63,
      y1: ((i * 19) % (H - 32)) + 31,
    } as const,
    classId: i % 8,
  }));
  // PyTorch, when installed, in its own process, timed in the same turns (it reports its own times).
  const torchFound = findTorch();
  const torch: TorchServer | null =
    'reason' in torchFound
      ? null
      : await startTorchServer(torchFound.python, unet, nchw, ad.cotangentNchw(obj.weights), {
          OPENBLAS_NUM_THREADS: '1',
          TORCH_THREADS: String(THREADS ?? os.cpus().length),
        });
  // After a PyTorch call its OpenMP threads may spin for a moment; let them settle (not timed).
  const torchCall = (what: 'forward' | 'gradcam') => ({
    reported: async () => {
      const ms = await (torch as TorchServer).time(what);
      await new Promise((r) => setTimeout(r, 20));
      return ms;
    },
  });
  // Interleaved, one round of each per iteration: on a shared machine the speed drifts by tens of
  // percent within a minute, and ratios of back-to-back medians would measure the drift.
  const first = await timeInterleaved<string>(
    {
      ...(torch ? { torchForward: torchCall('forward'), torchGradcam: torchCall('gradcam') } : {}),
      forward: () => plain.run(feeds),
      forwardCached: async () => (await ad.forward(x)).dispose(),
      forwardLean: async () => (await lean.forward(x)).dispose(),
      explainLean: forwardThenGradient(lean),
      explainOnce: forwardThenGradient(ad),
      // The layer known, the objective not (it depends on the prediction): a lean forward pass, then the gradient.
      explainLayerKnown: forwardThenGradient(ad, { layer: bottleneck, objectiveOf: () => obj }),
      // The region and class known before the forward pass: forward, cache and gradient in one run.
      explainPrimed: forwardThenGradient(ad, known),
      explainPrimedWhole: forwardThenGradient(whole, known),
      fusedRun: () => fused.run({ ...feeds, [COTANGENT]: cot }),
      explainFull: async () => {
        explainer.release();
        await explainer.explain(image, { region: BOX, classId: 3 });
      },
      // 16 regions on a new image through the Explainer: one forward pass, one batched backward, 16 heatmaps.
      explainManyCold: async () => {
        explainer.release();
        await explainer.explainMany(image, requests16);
      },
    },
    RUNS,
  );
  const {
    forward,
    forwardCached,
    forwardLean,
    explainLean,
    explainOnce,
    explainLayerKnown,
    explainPrimed,
    explainPrimedWhole,
    fusedRun,
    explainFull,
    explainManyCold,
  } = first;
  torch?.close();
  // The same 16 requests on the cached pass: 16 explain calls against one explainMany call.
  await explainer.explainMany(image, requests16);
  const manyWarm = await timeInterleaved(
    {
      explainSingles: async () => {
        for (const r of requests16) await explainer.explain(image, r);
      },
      explainMany: async () => void (await explainer.explainMany(image, requests16)),
    },
    Math.max(3, Math.floor(RUNS / 3)),
  );
  explainer.release();
  lean.dispose();

  const pass = await ad.forward(x);
  const wholePass = await whole.forward(x);
  let k = 0;
  const regions = await timeInterleaved(
    {
      newRegion: async () => dispose(await pass.gradient(bottleneck, boxObjective(++k, k % 8))),
      newRegionWhole: async () => dispose(await wholePass.gradient(bottleneck, boxObjective(++k, k % 8))),
    },
    RUNS,
  );
  wholePass.dispose();
  whole.dispose();
  const objectives = Array.from({ length: 16 }, (_, i) => boxObjective(i, i % 8));
  // One gradient call per objective against one gradientBatch call, in turns.
  const singlesVsBatch = (p: typeof pass, objs: Objective[]) =>
    timeInterleaved(
      {
        singles: async () => {
          for (const o of objs) dispose(await p.gradient(bottleneck, o));
        },
        batched: async () => {
          for (const g of await p.gradientBatch(bottleneck, objs)) dispose(g);
        },
      },
      Math.max(3, Math.floor(RUNS / 3)),
    );
  const many = await singlesVsBatch(pass, objectives);
  // The most batching can save on the cached pass: 16 objectives on one region (one window), in
  // 16 runs or stacked in one run — each region's backward is compute-bound, so stacking removes
  // only the per-run overhead.
  const stacked = await OnnxModelAdapter.create(bytes, nodeRuntime, { sessionOptions: SESSION, maxStack: 16 });
  const stackedPass = await stacked.forward(x);
  const oneRegion = Array.from({ length: 16 }, (_, i) => boxObjective(5, i % 8));
  for (const g of await stackedPass.gradientBatch(bottleneck, oneRegion)) dispose(g);
  const ceiling = await singlesVsBatch(stackedPass, oneRegion);
  stackedPass.dispose();
  stacked.dispose();
  const { newRegion, newRegionWhole } = regions;
  const { singles, batched } = many;
  const inputGrad = await time(async () => dispose(await pass.gradient(INPUT_LAYER, obj)), Math.max(3, Math.floor(RUNS / 3)));
  pass.dispose();

  console.log('\n| what (128x256 U-Net, bottleneck) | median |');
  console.log('| --- | --- |');
  console.log(`| ONNX Runtime forward (plain model) | ${fmt(forward)} |`);
  console.log(`| forward pass caching every layer (adapter.forward) | ${fmt(forwardCached)} |`);
  console.log(
    `| Seg-Grad-CAM: forward + gradient (adapter.forward + pass.gradient) | ${fmt(explainOnce)} (${(explainOnce / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| Seg-Grad-CAM, region and class known in advance (the Explainer's path for a fixed region and class): forward, lean cache and windowed gradient in one run | ${fmt(explainPrimed)} (${(explainPrimed / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| the same with windows off (backward on the whole map) | ${fmt(explainPrimedWhole)} (${(explainPrimedWhole / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| Seg-Grad-CAM, layer known, objective not (a region that depends on the prediction): lean forward pass + gradient | ${fmt(explainLayerKnown)} (${(explainLayerKnown / forward).toFixed(2)}x forward) |`,
  );
  console.log(`| forward pass caching the bottleneck and what its backward reads (cacheLayers: [bottleneck]) | ${fmt(forwardLean)} |`);
  console.log(
    `| Seg-Grad-CAM with that lean cache: forward + gradient | ${fmt(explainLean)} (${(explainLean / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| fused augmented graph (input + cotangent → A, ∂S/∂A, one run) | ${fmt(fusedRun)} (${(fusedRun / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| Explainer.explain on an image, cold (forward + gradient + CAM + heatmap) | ${fmt(explainFull)} (${(explainFull / forward).toFixed(2)}x forward) |`,
  );
  console.log(
    `| a new 64x32 region on the cached pass (windowed backward graph) | ${fmt(newRegion)} (${(newRegion / explainPrimed).toFixed(2)}x the first explanation) |`,
  );
  console.log(`| the same with windows off | ${fmt(newRegionWhole)} |`);
  console.log(`| 16 regions, 16 single calls | ${fmt(singles)} |`);
  console.log(`| 16 regions, one batched call (gradientBatch) | ${fmt(batched)} (${(singles / batched).toFixed(2)}x faster) |`);
  console.log(
    `| the most batching can save: 16 classes of one region, 16 calls / stacked in one run | ${fmt(ceiling.singles)} / ${fmt(ceiling.batched)} (${(ceiling.singles / ceiling.batched).toFixed(2)}x faster) |`,
  );
  console.log(
    `| 16 regions as pytorch-grad-cam users would: 16 × (forward + gradient), from the primed median above | ${fmt(16 * explainPrimed)} |`,
  );
  console.log(
    `| 16 regions: one forward pass + one batched call | ${fmt(forwardCached + batched)} (${((16 * explainPrimed) / (forwardCached + batched)).toFixed(2)}x faster) |`,
  );
  console.log(`| input gradient (saliency) on the cached pass | ${fmt(inputGrad)} |`);
  console.log(
    `| Explainer, 16 regions on the cached pass: 16 explain calls / one explainMany call | ${fmt(manyWarm.explainSingles)} / ${fmt(manyWarm.explainMany)} (${(manyWarm.explainSingles / manyWarm.explainMany).toFixed(2)}x faster) |`,
  );
  console.log(
    `| Explainer, 16 regions on a new image as pytorch-grad-cam users would: 16 cold explain calls, from the cold median above | ${fmt(16 * explainFull)} |`,
  );
  console.log(
    `| Explainer, 16 regions on a new image: one explainMany call (one forward pass, batched backward, 16 heatmaps) | ${fmt(explainManyCold)} (${((16 * explainFull) / explainManyCold).toFixed(2)}x faster) |`,
  );

  if (!torch) {
    console.log(`\nPyTorch: skipped — ${'reason' in torchFound ? torchFound.reason : ''}`);
  } else {
    const { torchForward, torchGradcam } = first;
    console.log(
      `\nPyTorch ${torch.torch} (${torch.threads} threads, OPENBLAS_NUM_THREADS=1), same weights, timed in the same turns as the rows above (its own process, times measured in Python):`,
    );
    console.log('| what | median |');
    console.log('| --- | --- |');
    console.log(`| PyTorch forward (no_grad) | ${fmt(torchForward)} |`);
    console.log(`| PyTorch Seg-Grad-CAM, pytorch-grad-cam way (hooks + loss.backward()) | ${fmt(torchGradcam)} |`);
    console.log(`| ours, region and class known (primed one run) / PyTorch | ${(explainPrimed / torchGradcam).toFixed(2)}x |`);
    console.log(
      `| ours, Explainer.explain cold on an image (with pre- and post-processing) / PyTorch | ${(explainFull / torchGradcam).toFixed(2)}x |`,
    );
    console.log(`| ours, forward caching every layer + gradient / PyTorch | ${(explainOnce / torchGradcam).toFixed(2)}x |`);
  }
  // Memory: explanations on a new forward pass every time (as for new images), tensors and RSS before and after.
  if (SOAK > 0) {
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    const t = performance.now();
    for (let i = 0; i < SOAK; i++) {
      explainer.release();
      await explainer.explain(image, {
        region: { kind: 'box', x0: (i * 13) % 200, y0: (i * 7) % 100, x1: ((i * 13) % 200) + 40, y1: ((i * 7) % 100) + 20 } as never,
        classId: i % 8,
      });
    }
    explainer.release();
    console.log(
      `\nmemory: ${SOAK} explanations (new forward pass each) in ${((performance.now() - t) / 1000).toFixed(1)} s; tensors ${tensors} → ${tf.memory().numTensors}; RSS ${(rss / 2 ** 20).toFixed(0)} → ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  x.dispose();
  await Promise.all([plain.release(), fused.release()]);
  explainer.dispose();
  await benchTfjs(unet, image);
}

/** The same U-Net and weights as a TF.js LayersModel on the wasm backend. */
async function benchTfjs(unet: ReturnType<typeof buildUnet>, image: RgbaImage) {
  await setupBackend('wasm');
  const model = unetLayersModel(unet.params, unet.spec);
  const ad = new LayersModelAdapter(model);
  const explainer = new Explainer(ad);
  const { height: H, width: W, channels: C } = ad.input;
  const x = tf.randomUniform([1, H, W, C], 0, 1, 'float32', 3) as tf.Tensor4D;
  const request = { region: BOX, classId: 3 };
  await explainer.explain(image, request); // warm-up
  let c = 0;
  const { predict, forward, explain, newRegion } = await timeInterleaved(
    {
      predict: async () => (model.predict(x) as tf.Tensor).dispose(),
      forward: async () => (await ad.forward(x)).dispose(),
      explain: async () => {
        explainer.release();
        await explainer.explain(image, request);
      },
      // Runs right after `explain` in each round, on its cached pass.
      newRegion: async () => void (await explainer.explain(image, { ...request, classId: ++c % 8 })),
    },
    RUNS,
  );
  const boxes = Array.from(
    { length: 16 },
    (_, i) =>
      ({
        kind: 'box',
        x0: (i * 37) % (W - 64),
        y0: (i * 19) % (H - 32),
        x1: ((i * 37) % (W - 64)) + 63,
        y1: ((i * 19) % (H - 32)) + 31,
      }) as const,
  );
  const requests = boxes.map((region, i) => ({ region, classId: i % 8 }));
  const singles = await time(
    async () => {
      for (const r of requests) await explainer.explain(image, r);
    },
    Math.max(3, Math.floor(RUNS / 3)),
  );
  const batched = await time(async () => void (await explainer.explainMany(image, requests)), Math.max(3, Math.floor(RUNS / 3)));
  const batchedCold = await time(
    async () => {
      explainer.release();
      await explainer.explainMany(image, requests);
    },
    Math.max(3, Math.floor(RUNS / 3)),
  );
  console.log(`\nTF.js ${tf.version_core} on ${tf.getBackend()}, the same U-Net and weights (scripts/onnx/unet-tfjs.ts):`);
  console.log('| what (128x256 U-Net, bottleneck) | median |');
  console.log('| --- | --- |');
  console.log(`| model.predict | ${fmt(predict)} |`);
  console.log(`| forward pass caching every layer (adapter.forward) | ${fmt(forward)} |`);
  console.log(
    `| Explainer.explain on an image, cold (forward + backward by VJPs on the cached pass + CAM + heatmap) | ${fmt(explain)} (${(explain / predict).toFixed(2)}x model.predict) |`,
  );
  console.log(`| a new class on the cached pass | ${fmt(newRegion)} (${(newRegion / explain).toFixed(2)}x the first explanation) |`);
  console.log(`| 16 regions, 16 single explain calls on the cached pass | ${fmt(singles)} |`);
  console.log(`| 16 regions, one explainMany call (one batched backward) | ${fmt(batched)} (${(singles / batched).toFixed(2)}x faster) |`);
  console.log(
    `| 16 regions as pytorch-grad-cam users would: 16 cold explanations (forward + gradient each), from the median above | ${fmt(16 * explain)} |`,
  );
  console.log(
    `| 16 regions: explainMany on a new image (one forward + one batched backward) | ${fmt(batchedCold)} (${((16 * explain) / batchedCold).toFixed(2)}x faster) |`,
  );
  x.dispose();
  explainer.dispose();
}

await main();
// The 1024x1024 nested U-Net against ONNX Runtime's plain forward (memory and time ratios).
await bench1024();
