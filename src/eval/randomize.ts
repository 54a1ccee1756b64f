/**
 * Cascading weight randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps";
 * docs/evaluation/protocol.md, item 3): the layers are re-initialised block by block from the output
 * down; a method whose heatmap does not change is explaining the image, not the model.
 */
import * as tf from '@tensorflow/tfjs';
import { hash32, mulberry32 } from '../data/prng.js';
import { gaussianNoise } from '../methods/random.js';

/** A step of the cascade: the layers (with trainable weights) of one block, randomised together. */
export interface CascadeStep {
  /** The block, e.g. 'logits', 'dec1', 'bottleneck', 'enc1'. */
  name: string;
  layers: string[];
}

/**
 * The block a layer belongs to: the name up to its first '_' ('dec2_conv1' → 'dec2'), with an
 * up-convolution 'up<i>' counted with the decoder block 'dec<i>' it feeds (the project's U-Net
 * names); any other name is its own block.
 */
export function blockOf(layerName: string): string {
  const prefix = layerName.split('_')[0];
  const up = /^up(\d+)$/.exec(prefix);
  return up ? `dec${up[1]}` : prefix;
}

/** The layers that have trainable weights, grouped into blocks, from the output to the input. */
export function cascadeSteps(model: tf.LayersModel): CascadeStep[] {
  const steps: CascadeStep[] = [];
  const byName = new Map<string, CascadeStep>();
  for (const layer of [...model.layers].reverse()) {
    if (layer.trainableWeights.length === 0) continue;
    const name = blockOf(layer.name);
    let step = byName.get(name);
    if (!step) {
      step = { name, layers: [] };
      byName.set(name, step);
      steps.push(step);
    }
    step.layers.push(layer.name);
  }
  return steps;
}

/** A copy of every weight of the model; `restore()` writes it back (and frees the copy with `dispose()`). */
export function snapshotWeights(model: tf.LayersModel): { restore(): void; dispose(): void } {
  const saved = model.layers.map((l) => l.getWeights().map((w) => w.clone()));
  return {
    restore: () => model.layers.forEach((l, i) => saved[i].length > 0 && l.setWeights(saved[i])),
    dispose: () => tf.dispose(saved.flat()),
  };
}

/** Mean and standard deviation of an array. */
function moments(v: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= Math.max(1, v.length);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(s / Math.max(1, v.length)) };
}

/**
 * Re-draws every trainable weight tensor of the named layers from a seeded normal with the
 * tensor's own mean and standard deviation (kernels: ≈ N(0, σ); batch-norm γ and β keep their
 * scale). Non-trainable state (batch-norm moving mean and variance) is kept. Each tensor's
 * noise is seeded by (seed, layer name, weight index), so the result does not depend on the order
 * of calls.
 */
export function randomizeLayers(model: tf.LayersModel, layerNames: string[], seed: number): void {
  for (const name of layerNames) {
    const layer = model.getLayer(name);
    const values = layer.getWeights();
    const trainable = new Set(layer.trainableWeights.map((w) => w.name));
    const next = layer.weights.map((w, i) => {
      if (!trainable.has(w.name)) return values[i];
      const data = values[i].dataSync();
      const { mean, std } = moments(data);
      const random = mulberry32(hash32(seed, stringHash(name), i));
      const noise = gaussianNoise(data.length, std, random);
      for (let k = 0; k < noise.length; k++) noise[k] += mean;
      return tf.tensor(noise, values[i].shape, 'float32');
    });
    layer.setWeights(next);
    // getWeights() hands out the variables' own tensors: only the new ones are ours to free.
    tf.dispose(next.filter((t, i) => t !== values[i]));
  }
}

/** A 32-bit hash of a string (for seeding by name). */
export function stringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = hash32(h, s.charCodeAt(i));
  return h;
}

/** How one weight tensor was re-initialised (for the report). */
export interface ReinitRecord {
  layer: string;
  weight: string;
  initializer: string;
}

/** The initializer config a layer declares for a weight, by the weight's name (kernel, bias, gamma, …). */
const INITIALIZER_KEYS: Record<string, string> = {
  kernel: 'kernelInitializer',
  recurrent_kernel: 'recurrentInitializer',
  depthwise_kernel: 'depthwiseInitializer',
  pointwise_kernel: 'pointwiseInitializer',
  bias: 'biasInitializer',
  gamma: 'gammaInitializer',
  beta: 'betaInitializer',
  moving_mean: 'movingMeanInitializer',
  moving_variance: 'movingVarianceInitializer',
  embeddings: 'embeddingsInitializer',
  alpha: 'alphaInitializer',
};

/** Variance-scaling parameters of TF.js's named initializers (they serialise as VarianceScaling too). */
const NAMED_SCALING: Record<string, { scale: number; mode: string; distribution: string }> = {
  GlorotNormal: { scale: 1, mode: 'fanAvg', distribution: 'normal' },
  GlorotUniform: { scale: 1, mode: 'fanAvg', distribution: 'uniform' },
  HeNormal: { scale: 2, mode: 'fanIn', distribution: 'normal' },
  HeUniform: { scale: 2, mode: 'fanIn', distribution: 'uniform' },
  LeCunNormal: { scale: 1, mode: 'fanIn', distribution: 'normal' },
  LeCunUniform: { scale: 1, mode: 'fanIn', distribution: 'uniform' },
};

/** TF.js's fans of a weight shape: the last two axes are (in, out), the others the receptive field. */
function fans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2] * receptive, fanOut: shape[shape.length - 1] * receptive };
}

/** `size` draws from a normal truncated at two standard deviations (redrawn beyond), as TF.js's truncatedNormal. */
function truncatedNormal(size: number, mean: number, std: number, random: () => number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size;) {
    const z = gaussianNoise(1, 1, random)[0];
    if (Math.abs(z) <= 2) out[i++] = mean + std * z;
  }
  return out;
}

/**
 * Values for a weight from its layer's declared initializer config, drawn with `random`; null for
 * an initializer this function does not know (the caller falls back).
 */
function drawFromInitializer(config: unknown, shape: number[], random: () => number): { values: Float32Array; what: string } | null {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = config as { className?: string; config?: Record<string, unknown> } | null | undefined;
  if (!c?.className) return null;
  const p = c.config ?? {};
  const num = (k: string, d: number) => (typeof p[k] === 'number' ? p[k] : d);
  switch (c.className) {
    case 'Zeros':
      return { values: new Float32Array(size), what: 'zeros' };
    case 'Ones':
      return { values: new Float32Array(size).fill(1), what: 'ones' };
    case 'Constant':
      return { values: new Float32Array(size).fill(num('value', 0)), what: `constant ${num('value', 0)}` };
    case 'RandomNormal':
      return { values: gaussianNoise(size, num('stddev', 0.05), random).map((v) => v + num('mean', 0)), what: 'random normal' };
    case 'TruncatedNormal':
      return { values: truncatedNormal(size, num('mean', 0), num('stddev', 0.05), random), what: 'truncated normal' };
    case 'RandomUniform': {
      const lo = num('minval', -0.05);
      const hi = num('maxval', 0.05);
      return { values: Float32Array.from({ length: size }, () => lo + (hi - lo) * random()), what: `uniform [${lo}, ${hi}]` };
    }
    default: {
      const vs =
        NAMED_SCALING[c.className] ??
        (c.className === 'VarianceScaling' ? (p as { scale: number; mode: string; distribution: string }) : null);
      if (!vs) return null;
      const { fanIn, fanOut } = fans(shape);
      const mode = String(vs.mode);
      const n = mode === 'fanIn' || mode === 'fan_in' ? fanIn : mode === 'fanOut' || mode === 'fan_out' ? fanOut : (fanIn + fanOut) / 2;
      const scale = Number(vs.scale ?? 1) / Math.max(1, n);
      const what = `variance scaling (scale ${vs.scale}, ${mode}, ${vs.distribution})`;
      if (String(vs.distribution) === 'uniform') {
        const limit = Math.sqrt(3 * scale);
        return { values: Float32Array.from({ length: size }, () => (2 * random() - 1) * limit), what };
      }
      return { values: truncatedNormal(size, 0, Math.sqrt(scale), random), what };
    }
  }
}

/**
 * Re-initialises every weight of the named layers — trainable or not — as at the start of
 * training: each weight is drawn from the initializer its layer declares (kernels: e.g. He or
 * Glorot variance scaling, from the tensor's fans; biases: zeros; batch-norm γ = 1, β = 0, moving
 * mean 0 and moving variance 1). A weight whose initializer is unknown is re-drawn from a normal
 * with its own mean and standard deviation (said in the record). Each tensor's draws are seeded
 * by (seed, layer name, weight index), so the result does not depend on the order of calls.
 */
export function reinitializeLayers(model: tf.LayersModel, layerNames: string[], seed: number): ReinitRecord[] {
  const records: ReinitRecord[] = [];
  for (const name of layerNames) {
    const layer = model.getLayer(name);
    const config = layer.getConfig() as Record<string, unknown>;
    const values = layer.getWeights();
    const next = layer.weights.map((w, i) => {
      const short = w.originalName.split('/').pop() ?? w.originalName;
      const random = mulberry32(hash32(seed, stringHash(name), i));
      const key = INITIALIZER_KEYS[short];
      const drawn = key ? drawFromInitializer(config[key], w.shape as number[], random) : null;
      if (drawn) {
        records.push({ layer: name, weight: short, initializer: drawn.what });
        return tf.tensor(drawn.values, values[i].shape, 'float32');
      }
      const { mean, std } = moments(values[i].dataSync());
      records.push({ layer: name, weight: short, initializer: `unknown initializer: normal with the weight's own mean and std` });
      const noise = gaussianNoise(values[i].size, std, random);
      for (let k = 0; k < noise.length; k++) noise[k] += mean;
      return tf.tensor(noise, values[i].shape, 'float32');
    });
    layer.setWeights(next);
    tf.dispose(next);
  }
  return records;
}
