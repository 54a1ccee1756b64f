import * as tf from '@tensorflow/tfjs';
import type { RgbaImage } from '../../src/image.js';

/** Tiny models whose gradients and attributions can be written down by hand, for the method tests. */

const init = (seed: number) => tf.initializers.glorotNormal({ seed });

export function setWeights(layer: tf.layers.Layer, ...values: Array<{ data: number[]; shape: number[] }>): void {
  const ts = values.map((v) => tf.tensor(v.data, v.shape));
  layer.setWeights(ts);
  tf.dispose(ts);
}

/** conv 3x3 (ReLU) 'feat' → 1x1 conv 'logits': ∂S/∂A^k_uv = W_kc · M_uv, a gradient known without running anything. */
export function linearHead(size = 6, channels = 4, classes = 2, seed = 3): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3] });
  const feat = tf.layers
    .conv2d({
      filters: channels,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(seed),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
      name: 'feat',
    })
    .apply(input) as tf.SymbolicTensor;
  const logits = tf.layers
    .conv2d({
      filters: classes,
      kernelSize: 1,
      kernelInitializer: init(seed + 1),
      biasInitializer: tf.initializers.constant({ value: 0.2 }),
      name: 'logits',
    })
    .apply(feat) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

/** y = ReLU(x − t) per pixel on a grey input; a single output channel (binary: class 1 is y). */
export function thresholdModel(size: number, t: number): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 1] });
  const hLayer = tf.layers.conv2d({ filters: 1, kernelSize: 1, activation: 'relu', name: 'h' });
  const yLayer = tf.layers.conv2d({ filters: 1, kernelSize: 1, name: 'y' });
  const out = yLayer.apply(hLayer.apply(input)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  setWeights(hLayer, { data: [1], shape: [1, 1, 1, 1] }, { data: [-t], shape: [1] });
  setWeights(yLayer, { data: [1], shape: [1, 1, 1, 1] }, { data: [0], shape: [1] });
  return model;
}

/** One 1x1 conv: logits_c(p) = Σ_ch x_ch(p) W[ch][c] + b_c, so ∂S/∂x(p) = W[:, c] for p in M and 0 elsewhere. */
export function pixelLinear(size: number, kernel: number[][], bias: number[]): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3] });
  const layer = tf.layers.conv2d({ filters: bias.length, kernelSize: 1, name: 'linear' });
  const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
  setWeights(layer, { data: kernel.flat(), shape: [1, 1, 3, bias.length] }, { data: bias, shape: [bias.length] });
  return model;
}

/** A grey image from values 0..255, row-major. */
export function greyImage(width: number, height: number, values: number[]): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  values.forEach((v, i) => data.set([v, v, v, 255], i * 4));
  return { width, height, data };
}

/** The model input the explainer builds from an image of the model's size (RGB / 255), computed by hand. */
export function inputOf(image: RgbaImage, channels = 3): tf.Tensor4D {
  const n = image.width * image.height;
  const x = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) {
    if (channels === 1) x[i] = (image.data[i * 4] + image.data[i * 4 + 1] + image.data[i * 4 + 2]) / 3 / 255;
    else for (let c = 0; c < 3; c++) x[i * 3 + c] = image.data[i * 4 + c] / 255;
  }
  return tf.tensor4d(x, [1, image.height, image.width, channels]);
}

/** S = Σ weights · model.predict(x) per image, through tfjs-layers' own predict (not our executor). */
export function predictScores(model: tf.LayersModel, x: tf.Tensor4D, weights: Float32Array): number[] {
  return tf.tidy(() => {
    const y = model.predict(x) as tf.Tensor;
    const w = tf.tensor(weights, [1, ...y.shape.slice(1)]);
    return Array.from(tf.sum(tf.mul(y, w).reshape([y.shape[0], -1]), 1).dataSync());
  });
}

/** A layer's output through a sub-model of tfjs-layers (not our executor). */
export function layerOutput(model: tf.LayersModel, layer: string, x: tf.Tensor4D): Float32Array {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
  return tf.tidy(() => (sub.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Pearson correlation: the evaluation's own (src/eval/stats.ts). */
export { pearson } from '../../src/eval/stats.js';
