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
