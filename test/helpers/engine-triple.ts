import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../../src/engine/contract.js';
import { LayersModelAdapter } from '../../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../../src/engine/onnx/adapter.js';
import { GraphBuilder as OnnxBuilder, emptyModel, valueInfo } from '../../src/engine/onnx/builder.js';
import { nodeRuntime } from '../../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../../src/engine/onnx/proto.js';
import { GraphBuilder, convAttrs, fusedAttrs } from './graph-builder.js';

export interface Triple {
  layers: ModelAdapter;
  graph: ModelAdapter;
  onnx: ModelAdapter;
}

const init = (seed: number) => tf.initializers.glorotNormal({ seed });
const biasInit = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.1, seed });

/** A Keras conv kernel [kh, kw, in, out] as ONNX [out, in, kh, kw]. */
const onnxKernel = (k: tf.Tensor) => tf.tidy(() => tf.transpose(k, [3, 2, 0, 1]).dataSync());

/**
 * The same small segmentation net as a LayersModel, a GraphModel and an ONNX model: conv 3x3 (ReLU) 'c1' → conv 3x3
 * (ReLU) 'c2' → 'sum' = c1 + c2 (a skip around c2) → conv 1x1 logits, `size`x`size`x3 in, `classes` out. Layer
 * names: 'c1', 'c2' on every engine.
 */
export async function segmentationTriple(size = 8, classes = 3, seed = 1): Promise<Triple> {
  const input = tf.input({ shape: [size, size, 3] });
  const conv = (name: string, filters: number, k: number, s: number, activation: 'relu' | 'linear') =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize: k,
      padding: 'same',
      activation,
      kernelInitializer: init(seed + s),
      biasInitializer: biasInit(seed + 10 + s),
    });
  const c1 = conv('c1', 4, 3, 1, 'relu').apply(input) as tf.SymbolicTensor;
  const c2 = conv('c2', 4, 3, 2, 'relu').apply(c1) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([c1, c2]) as tf.SymbolicTensor;
  const out = conv('out', classes, 1, 3, 'linear').apply(sum) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const w = (layer: string, i: number) => model.getLayer(layer).getWeights()[i];

  const g = new GraphBuilder();
  const gw = (layer: string, i: number) => g.weight(`${layer}/w${i}`, w(layer, i));
  g.input('x', [1, size, size, 3]);
  g.op('c1', '_FusedConv2D', ['x', gw('c1', 0), gw('c1', 1)], { ...convAttrs(1, 'SAME'), ...fusedAttrs('BiasAdd', 'Relu') });
  g.op('c2', '_FusedConv2D', ['c1', gw('c2', 0), gw('c2', 1)], { ...convAttrs(1, 'SAME'), ...fusedAttrs('BiasAdd', 'Relu') });
  g.op('sum', 'AddV2', ['c1', 'c2']);
  g.op('out', '_FusedConv2D', ['sum', gw('out', 0), gw('out', 1)], { ...convAttrs(1, 'SAME'), ...fusedAttrs('BiasAdd') });

  const m = emptyModel(13);
  const b = new OnnxBuilder(m.graph);
  m.graph.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, size, size]));
  const oconv = (layer: string, x: string, k: number, out?: string) => {
    const kernel = b.floats(`${layer}_w`, [w(layer, 0).shape[3] as number, w(layer, 0).shape[2] as number, k, k], onnxKernel(w(layer, 0)));
    const bias = b.floats(`${layer}_b`, [w(layer, 1).shape[0]], w(layer, 1).dataSync());
    const pad = (k - 1) / 2;
    const attrs = { kernel_shape: { ints: [k, k] }, pads: { ints: [pad, pad, pad, pad] } };
    return out ? b.node('Conv', [x, kernel, bias], attrs, [b.claim(out)])[0] : b.op('Conv', [x, kernel, bias], attrs);
  };
  const o1 = b.node('Relu', [oconv('c1', 'input', 3)], {}, [b.claim('c1')])[0];
  const o2 = b.node('Relu', [oconv('c2', o1, 3)], {}, [b.claim('c2')])[0];
  const os = b.node('Add', [o1, o2], {}, [b.claim('sum')])[0];
  oconv('out', os, 1, 'output');
  m.graph.output.push(valueInfo('output', DataType.FLOAT, [1, classes, size, size]));

  return {
    layers: new LayersModelAdapter(model),
    graph: await g.load(),
    onnx: await OnnxModelAdapter.create(encodeModel(m), nodeRuntime),
  };
}

/**
 * A classifier as a LayersModel, a GraphModel (Mean → MatMul → BiasAdd) and an ONNX model: conv 3x3 (ReLU) 'features' → global average pooling → dense
 * (`classes`), the ONNX head a Flatten then a Gemm with transB = 1 (the kernel stored transposed) and a bias.
 */
export async function classifierTriple(size = 6, classes = 3, seed = 5): Promise<Triple> {
  const input = tf.input({ shape: [size, size, 3] });
  const features = tf.layers
    .conv2d({
      name: 'features',
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(seed),
      biasInitializer: biasInit(seed + 1),
    })
    .apply(input) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(features) as tf.SymbolicTensor;
  const head = tf.layers
    .dense({ name: 'head', units: classes, kernelInitializer: init(seed + 2), biasInitializer: biasInit(seed + 3) })
    .apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head });
  const w = (layer: string, i: number) => model.getLayer(layer).getWeights()[i];

  const m = emptyModel(13);
  const b = new OnnxBuilder(m.graph);
  m.graph.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, size, size]));
  const k = b.floats('features_w', [4, 3, 3, 3], onnxKernel(w('features', 0)));
  const kb = b.floats('features_b', [4], w('features', 1).dataSync());
  const conv = b.op('Conv', ['input', k, kb], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } });
  const f = b.node('Relu', [conv], {}, [b.claim('features')])[0];
  const gap = b.op('GlobalAveragePool', [f]);
  const flat = b.op('Flatten', [gap], { axis: { i: 1 } });
  const wt = tf.tidy(() => tf.transpose(w('head', 0)).dataSync());
  const hw = b.floats('head_w', [classes, 4], wt);
  const hb = b.floats('head_b', [classes], w('head', 1).dataSync());
  b.node('Gemm', [flat, hw, hb], { transB: { i: 1 } }, [b.claim('output')]);
  m.graph.output.push(valueInfo('output', DataType.FLOAT, [1, classes]));

  const g = new GraphBuilder();
  const gw = (layer: string, i: number) => g.weight(`${layer}/w${i}`, w(layer, i));
  g.input('x', [1, size, size, 3]);
  g.op('features', '_FusedConv2D', ['x', gw('features', 0), gw('features', 1)], {
    ...convAttrs(1, 'SAME'),
    ...fusedAttrs('BiasAdd', 'Relu'),
  });
  g.op('gap', 'Mean', ['features', g.constant('gap/axes', [1, 2], [2], 'int32')], { keep_dims: { b: false }, Tidx: { type: 'DT_INT32' } });
  g.op('head/matmul', 'MatMul', ['gap', gw('head', 0)], { transpose_a: { b: false }, transpose_b: { b: false } });
  g.op('head', 'BiasAdd', ['head/matmul', gw('head', 1)], { data_format: { s: btoa('NHWC') } });
  return {
    layers: new LayersModelAdapter(model),
    graph: await g.load(),
    onnx: await OnnxModelAdapter.create(encodeModel(m), nodeRuntime),
  };
}
