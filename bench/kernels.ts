/**
 * Timing of the wasm kernel fixes (not a test). Run:
 *
 *   node --import tsx bench/kernels.ts [train|cam|all] [--stock] [--reps N]
 *                  [--depth D] [--base B] [--no-bn]      (train model; default 4, 8, with BN)
 *
 * train: Adam step, batch 8, 64x64x3, depth-4 base-8 U-Net (2x conv3x3+BN+ReLU per block,
 *        conv2dTranspose k2 s2 up-convolutions, concat skips), softmax CE over 11 classes.
 * cam:   gradient of a class score of a 128x256 depth-4 base-16 U-Net (1.94 M params) w.r.t. its
 *        bottleneck activations (the rest of the network re-run from there).
 * --stock: do not register our kernels (shows what tfjs does by itself; the
 *          training step then fails on wasm, Conv2DBackpropFilter being missing).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setupBackend } from '../src/backend/index.js';

type SymT = tf.SymbolicTensor;

function convBlock(x: SymT, filters: number, name: string, bn: boolean): SymT {
  for (let i = 0; i < 2; i++) {
    x = tf.layers
      .conv2d({
        filters,
        kernelSize: 3,
        padding: 'same',
        useBias: !bn,
        name: `${name}_conv${i}`,
        activation: bn ? 'linear' : 'relu',
      })
      .apply(x) as SymT;
    if (bn) {
      x = tf.layers.batchNormalization({ name: `${name}_bn${i}` }).apply(x) as SymT;
      x = tf.layers.activation({ activation: 'relu', name: `${name}_relu${i}` }).apply(x) as SymT;
    }
  }
  return x;
}

/**
 * Ronneberger-style U-Net with `depth` poolings (depth + 1 resolution levels; the
 * bottleneck has base·2^depth channels, as in docs/design-notes.md: depth 4 base 16 = 1.94 M
 * parameters); returns the model and the name of its bottleneck layer.
 */
export function buildUNet(
  h: number,
  w: number,
  c: number,
  classes: number,
  depth: number,
  base: number,
  bn = true,
): {
  model: tf.LayersModel;
  bottleneck: string;
} {
  const input = tf.input({ shape: [h, w, c], name: 'image' });
  let x: SymT = input;
  const skips: SymT[] = [];
  for (let d = 0; d < depth; d++) {
    x = convBlock(x, base << d, `enc${d}`, bn);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${d}` }).apply(x) as SymT;
  }
  x = convBlock(x, base << depth, 'mid', bn);
  const bottleneck = bn ? `mid_relu1` : `mid_conv1`;
  for (let d = depth - 1; d >= 0; d--) {
    x = tf.layers.conv2dTranspose({ filters: base << d, kernelSize: 2, strides: 2, padding: 'same', name: `up${d}` }).apply(x) as SymT;
    x = tf.layers.concatenate({ name: `cat${d}` }).apply([skips[d], x]) as SymT;
    x = convBlock(x, base << d, `dec${d}`, bn);
  }
  const logits = tf.layers.conv2d({ filters: classes, kernelSize: 1, name: 'logits' }).apply(x) as SymT;
  return { model: tf.model({ inputs: input, outputs: logits }), bottleneck };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs `step` warmup + reps times; summarises wall and CPU seconds of the last `reps` runs. */
async function timeSteps(reps: number, warmup: number, step: () => unknown): Promise<string> {
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < warmup + reps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await step();
    const dt = (performance.now() - t0) / 1000;
    const dc = process.cpuUsage(c0);
    if (i >= warmup) {
      times.push(dt);
      cpu.push((dc.user + dc.system) / 1e6);
    }
  }
  return (
    `median ${median(times).toFixed(3)} s wall, ${median(cpu).toFixed(3)} s CPU, ` +
    `over ${reps} [${times.map((t) => t.toFixed(3)).join(' ')}]`
  );
}

async function benchTrain(reps: number, depth: number, base: number, bn: boolean): Promise<void> {
  const B = 8;
  const H = 64;
  const classes = 11;
  const { model } = buildUNet(H, H, 3, classes, depth, base, bn);
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([B, H, H, 3]);
  const labels = tf.oneHot(tf.randomUniform([B, H, H], 0, classes, 'int32'), classes);
  const step = () => {
    const cost = opt.minimize(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, logits);
    }, true);
    const loss = cost!.dataSync()[0];
    cost!.dispose();
    if (!Number.isFinite(loss)) throw new Error('loss is not finite');
  };
  const timing = await timeSteps(reps, 2, step);
  console.log(
    `train step (Adam, batch 8, 64x64x3, U-Net depth ${depth} base ${base}${bn ? ', BN' : ''}, 11 classes; ` +
      `${model.countParams()} params): ${timing}; tensors ${tf.memory().numTensors}`,
  );
  tf.dispose([x, labels]);
  model.dispose();
  opt.dispose();
}

/** A Conv2D layer run unfused (conv, bias, activation as separate ops): under tf.grad the
 * fused op would also compute the filter gradient, which a CAM never needs. */
function applyUnfused(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const cfg = layer.getConfig() as { strides: number[]; padding: 'same' | 'valid'; activation: string; useBias: boolean };
  const [kernel, bias] = layer.getWeights();
  let y: tf.Tensor = tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, cfg.strides as [number, number], cfg.padding);
  if (cfg.useBias) y = tf.add(y, bias);
  if (cfg.activation === 'relu') y = tf.relu(y);
  else if (cfg.activation !== 'linear') throw new Error(`activation ${cfg.activation}`);
  return y;
}

/** Runs the layers of `model` after `fromLayer` on `a` (its output), reading other tensors from `cache`. */
function runFrom(model: tf.LayersModel, fromLayer: string, a: tf.Tensor, cache: Map<string, tf.Tensor>): tf.Tensor {
  const values = new Map(cache);
  values.set(fromLayer, a);
  let seen = false;
  let out = a;
  for (const layer of model.layers) {
    if (layer.name === fromLayer) {
      seen = true;
      continue;
    }
    if (!seen || layer.getClassName() === 'InputLayer') continue;
    const inbound = layer.inboundNodes[0].inboundLayers.map((l) => values.get(l.name)!);
    out =
      layer.getClassName() === 'Conv2D'
        ? applyUnfused(layer, inbound[0])
        : (layer.apply(inbound.length === 1 ? inbound[0] : inbound) as tf.Tensor);
    values.set(layer.name, out);
  }
  return out;
}

async function benchCam(reps: number): Promise<void> {
  const { model, bottleneck } = buildUNet(128, 256, 3, 11, 4, 16);
  const x = tf.randomUniform([1, 128, 256, 3]);
  // Cache every layer output once (a multi-output model over all layers).
  const names = model.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name);
  const probe = tf.model({ inputs: model.inputs, outputs: names.map((n) => model.getLayer(n).output as SymT) });
  const mask = tf.tidy(() =>
    tf.oneHot(tf.fill([1, 128, 256], 3, 'int32'), 11).mul(tf.randomUniform([1, 128, 256, 1]).greater(0.5).cast('float32')),
  );
  const timing = await timeSteps(reps, 1, async () => {
    const g = tf.tidy(() => {
      const outs = probe.predict(x) as tf.Tensor[];
      const cache = new Map(names.map((n, j) => [n, outs[j]] as [string, tf.Tensor]));
      cache.set('image', x);
      const a = cache.get(bottleneck)!;
      return tf.grad((aa: tf.Tensor) => runFrom(model, bottleneck, aa, cache).mul(mask).sum())(a);
    });
    await g.data();
    g.dispose();
  });
  console.log(
    `CAM gradient at the bottleneck (128x256, depth 4 base 16, forward + backward; ` + `${model.countParams()} params): ${timing}`,
  );
  tf.dispose([x, mask]);
  model.dispose();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const what = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? 'all';
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const reps = opt('--reps', 5);
  tf.env().set('PROD', true);
  if (args.includes('--stock')) {
    await tf.setBackend('wasm');
    await tf.ready();
  } else {
    await setupBackend('wasm');
  }
  console.log(`backend ${tf.getBackend()}`);
  if (what === 'train' || what === 'all') await benchTrain(reps, opt('--depth', 4), opt('--base', 8), !args.includes('--no-bn'));
  if (what === 'cam' || what === 'all') await benchCam(reps);
}

if (process.argv[1]?.endsWith('kernels.ts')) await main();
