/**
 * The U-Net of ./unet.ts as a TF.js LayersModel with the same numbers (NHWC), for parity tests
 * of the ONNX adapter against the TF.js one. Layer names follow the ONNX parameter names
 * (`enc1_conv1` ↔ enc1.conv1, `up3` ↔ up3, `head` ↔ head); each block conv has its ReLU fused
 * (activation 'relu'), so its output is the ONNX Relu node's output.
 *
 * Layouts: Conv weight [cout, cin, kh, kw] → conv2d kernel [kh, kw, cin, cout]; ConvTranspose
 * weight [cin, cout, kh, kw] → conv2dTranspose kernel [kh, kw, cout, cin], no spatial flip
 * (both scatter x[i, j]·W[ki, kj] to output pixel (2i + ki, 2j + kj)).
 */
import * as tf from '@tensorflow/tfjs';
import type { Param, UnetSpec } from './unet.js';

export function unetLayersModel(params: Param[], spec: UnetSpec): tf.LayersModel {
  const byName = new Map(params.map((p) => [p.name, p]));
  const get = (name: string): Param => {
    const p = byName.get(name);
    if (!p) throw new Error(`missing parameter ${name}`);
    return p;
  };
  const weighted: Array<{ layer: tf.layers.Layer; param: string; perm: number[] }> = [];
  const conv = (x: tf.SymbolicTensor, param: string, name: string, cout: number, k: number, relu: boolean): tf.SymbolicTensor => {
    const layer = tf.layers.conv2d({ name, filters: cout, kernelSize: k, padding: 'same', activation: relu ? 'relu' : 'linear' });
    weighted.push({ layer, param, perm: [2, 3, 1, 0] });
    return layer.apply(x) as tf.SymbolicTensor;
  };
  const block = (x: tf.SymbolicTensor, name: string, c: number) =>
    conv(conv(x, `${name}.conv1`, `${name}_conv1`, c, 3, true), `${name}.conv2`, `${name}_conv2`, c, 3, true);

  const input = tf.input({ shape: [spec.height, spec.width, spec.inChannels], name: 'input' });
  let x: tf.SymbolicTensor = input;
  const skips: tf.SymbolicTensor[] = [];
  for (let l = 0; l < spec.levels; l++) {
    x = block(x, `enc${l + 1}`, spec.base * 2 ** l);
    skips.push(x);
    x = tf.layers.maxPooling2d({ name: `pool${l + 1}`, poolSize: 2, strides: 2, padding: 'valid' }).apply(x) as tf.SymbolicTensor;
  }
  x = block(x, 'bottleneck', spec.base * 2 ** spec.levels);
  for (let l = spec.levels - 1; l >= 0; l--) {
    const c = spec.base * 2 ** l;
    const up = tf.layers.conv2dTranspose({ name: `up${l + 1}`, filters: c, kernelSize: 2, strides: 2, padding: 'valid' });
    weighted.push({ layer: up, param: `up${l + 1}`, perm: [2, 3, 1, 0] });
    const cat = tf.layers
      .concatenate({ name: `cat${l + 1}`, axis: -1 })
      .apply([up.apply(x) as tf.SymbolicTensor, skips[l]]) as tf.SymbolicTensor;
    x = block(cat, `dec${l + 1}`, c);
  }
  const logits = conv(x, 'head', 'head', spec.classes, 1, false);
  const model = tf.model({ inputs: input, outputs: logits, name: 'unet' });

  for (const { layer, param, perm } of weighted) {
    const w = get(`${param}.weight`);
    const b = get(`${param}.bias`);
    const values = tf.tidy(() => [tf.transpose(tf.tensor(w.data, w.dims), perm), tf.tensor1d(b.data)]);
    layer.setWeights(values);
    tf.dispose(values);
  }
  return model;
}
