/**
 * The project's own U-Net (Ronneberger et al. 2015) as a functional tf.LayersModel.
 *
 * depth = number of 2x2 max-pool steps. Level i (1..depth) has base * 2^(i-1) channels; the
 * bottleneck has base * 2^depth. Each block: conv3x3 'same' (+ batch norm) + ReLU, twice.
 * Decoder level i: conv2dTranspose k2 s2 to level i's channels (`up{i}`), concatenation with the
 * skip `enc{i}_relu2` (`concat{i}`), then a block. A final 1x1 conv gives linear logits (`logits`);
 * there is no softmax layer: logits are what Seg-Grad-CAM explains.
 *
 * Layer names: enc{i}_conv{1,2}, enc{i}_bn{1,2}, enc{i}_relu{1,2}, pool{i}, bottleneck_conv{1,2},
 * bottleneck_bn{1,2}, bottleneck_relu{1,2}, up{i}, concat{i}, dec{i}_conv{1,2}, dec{i}_bn{1,2},
 * dec{i}_relu{1,2}, logits (bn layers only with batchNorm).
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { hash32 } from '../data/prng.js';

export interface UnetOptions {
  /** [H, W]; both must be divisible by 2^depth. */
  inputSize: [number, number];
  channels?: number;
  classes?: number;
  depth?: number;
  base?: number;
  batchNorm?: boolean;
  seed?: number;
}

export type ResolvedUnetOptions = Required<UnetOptions>;

export function resolveUnetOptions(o: UnetOptions): ResolvedUnetOptions {
  const r: ResolvedUnetOptions = {
    inputSize: o.inputSize,
    channels: o.channels ?? 3,
    classes: o.classes ?? 11,
    depth: o.depth ?? 4,
    base: o.base ?? 8,
    batchNorm: o.batchNorm ?? true,
    seed: o.seed ?? 0,
  };
  const [h, w] = r.inputSize;
  const f = 2 ** r.depth;
  if (!Number.isInteger(r.depth) || r.depth < 1 || r.depth > 6)
    throw new SegGradCamError(`U-Net depth must be 1..6 (got ${r.depth})`, 'usage');
  if (!Number.isInteger(r.base) || r.base < 1) throw new SegGradCamError(`U-Net base must be a positive integer (got ${r.base})`, 'usage');
  if (!Number.isInteger(h) || !Number.isInteger(w) || h % f !== 0 || w % f !== 0 || h <= 0 || w <= 0)
    throw new SegGradCamError(`input size ${h}x${w} must be divisible by 2^depth = ${f}`, 'usage');
  return r;
}

/** Builds the U-Net. The same options (including seed) give bit-identical initial weights. */
export function buildUnet(options: UnetOptions): tf.LayersModel {
  const o = resolveUnetOptions(options);
  let layerNo = 0;
  const seedFor = (): number => hash32(o.seed, ++layerNo) % 2147483647;

  const input = tf.input({ shape: [o.inputSize[0], o.inputSize[1], o.channels], name: 'input' });

  const conv = (x: tf.SymbolicTensor, filters: number, name: string, kernel = 3): tf.SymbolicTensor =>
    tf.layers
      .conv2d({
        filters,
        kernelSize: kernel,
        padding: 'same',
        useBias: !o.batchNorm,
        kernelInitializer: tf.initializers.heNormal({ seed: seedFor() }),
        name,
      })
      .apply(x) as tf.SymbolicTensor;

  const block = (x: tf.SymbolicTensor, filters: number, prefix: string): tf.SymbolicTensor => {
    let y = x;
    for (const k of [1, 2]) {
      y = conv(y, filters, `${prefix}_conv${k}`);
      if (o.batchNorm) y = tf.layers.batchNormalization({ name: `${prefix}_bn${k}`, momentum: 0.9 }).apply(y) as tf.SymbolicTensor;
      y = tf.layers.reLU({ name: `${prefix}_relu${k}` }).apply(y) as tf.SymbolicTensor;
    }
    return y;
  };

  const skips: tf.SymbolicTensor[] = [];
  let x: tf.SymbolicTensor = input;
  for (let i = 1; i <= o.depth; i++) {
    x = block(x, o.base * 2 ** (i - 1), `enc${i}`);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${i}` }).apply(x) as tf.SymbolicTensor;
  }
  x = block(x, o.base * 2 ** o.depth, 'bottleneck');
  for (let i = o.depth; i >= 1; i--) {
    const filters = o.base * 2 ** (i - 1);
    x = tf.layers
      .conv2dTranspose({
        filters,
        kernelSize: 2,
        strides: 2,
        padding: 'same',
        kernelInitializer: tf.initializers.heNormal({ seed: seedFor() }),
        name: `up${i}`,
      })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.concatenate({ axis: -1, name: `concat${i}` }).apply([skips[i - 1], x]) as tf.SymbolicTensor;
    x = block(x, filters, `dec${i}`);
  }
  const logits = tf.layers
    .conv2d({
      filters: o.classes,
      kernelSize: 1,
      padding: 'same',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seedFor() }),
      name: 'logits',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: `unet_d${o.depth}_b${o.base}` });
}
