import * as tf from '@tensorflow/tfjs';

/**
 * A two-level U-Net small enough for finite differences: conv → pool → conv (bottleneck) →
 * up-conv → concat with the skip → conv → 1x1 logits. Seeded, so every run is the same.
 */
export function tinyUnet(size = 8, classes = 3, seed = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotNormal({ seed: seed + s });
  const input = tf.input({ shape: [size, size, 3], name: 'image' });
  const e1 = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
      biasInitializer: 'zeros',
      name: 'enc1',
    })
    .apply(input) as tf.SymbolicTensor;
  const p1 = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(e1) as tf.SymbolicTensor;
  const b = tf.layers
    .conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'bottleneck' })
    .apply(p1) as tf.SymbolicTensor;
  const u = tf.layers
    .conv2dTranspose({ filters: 4, kernelSize: 2, strides: 2, padding: 'same', kernelInitializer: init(3), name: 'up1' })
    .apply(b) as tf.SymbolicTensor;
  const c = tf.layers.concatenate({ name: 'concat1' }).apply([u, e1]) as tf.SymbolicTensor;
  const d = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(4), name: 'dec1' })
    .apply(c) as tf.SymbolicTensor;
  const out = tf.layers
    .conv2d({ filters: classes, kernelSize: 1, kernelInitializer: init(5), name: 'logits' })
    .apply(d) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'tiny_unet' });
  // Non-zero biases so that they matter in the checks.
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 2) {
      const bias = tf.randomNormal(ws[1].shape, 0, 0.1, 'float32', seed + 7);
      layer.setWeights([ws[0], bias]);
      bias.dispose();
    }
  }
  return model;
}
