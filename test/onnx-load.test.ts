/**
 * Loading any valid ONNX file (docs/onnx.md, "Loading"): nodes out of topological order, float16
 * and bfloat16 weights, a final activation behind Casts, quantised models read straight-through,
 * ONNX Runtime failures as typed errors. Checked on the committed zoo (fixtures/zoo/) against
 * PyTorch's references and ONNX Runtime's own runs of the same files.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER } from '../src/engine/contract.js';
import { SegGradCamError } from '../src/errors.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { sortGraph, BFLOAT16 } from '../src/engine/onnx/load.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel, type ModelProto, type NodeProto } from '../src/engine/onnx/proto.js';
import { Explainer } from '../src/explain.js';
import { useCpu } from './helpers/setup.js';
import { ZOO, cosine, openZoo, relativeError, zooAlphaCam, zooReference } from './helpers/zoo.js';

before(useCpu);

const node = (name: string, opType: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({
  name,
  opType,
  input,
  output,
  attribute,
});

/** x [1, 1, 2, 2] → nodes → y, opset 17. */
function tiny(nodes: NodeProto[], extra: (m: ModelProto) => void = () => {}): ModelProto {
  const m = emptyModel(17, 'tiny');
  m.graph.input.push(valueInfo('x', DataType.FLOAT, [1, 1, 2, 2]));
  m.graph.output.push(valueInfo('y', DataType.FLOAT, [1, 1, 2, 2]));
  m.graph.node.push(...nodes);
  extra(m);
  return m;
}

async function rejects(bytes: Uint8Array, pattern: RegExp) {
  await assert.rejects(OnnxModelAdapter.create(bytes, nodeRuntime), (e: unknown) => {
    assert.ok(e instanceof SegGradCamError, `a typed error, got ${String(e)}`);
    assert.equal(e.code, 'model');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('topological sort on load', () => {
  test('a graph written backwards is sorted; the file order is kept where it is already one', () => {
    const a = node('a', 'Relu', ['x'], ['t1']);
    const b = node('b', 'Neg', ['t1'], ['t2']);
    const c = node('c', 'Relu', ['x'], ['t3']);
    const d = node('d', 'Add', ['t2', 't3'], ['y']);
    assert.deepEqual(
      sortGraph(tiny([d, b, c, a]).graph).map((n) => n.name),
      ['c', 'a', 'b', 'd'],
    );
    assert.deepEqual(
      sortGraph(tiny([a, b, c, d]).graph).map((n) => n.name),
      ['a', 'b', 'c', 'd'],
    );
  });

  test('a real cycle and a missing input are typed errors naming the node', async () => {
    const cycle = tiny([
      node('first', 'Relu', ['x'], ['t0']),
      node('loopA', 'Add', ['t0', 't2'], ['t1']),
      node('loopB', 'Relu', ['t1'], ['t2']),
      node('out', 'Relu', ['t2'], ['y']),
    ]);
    assert.throws(() => sortGraph(cycle.graph), /node 'loop[AB]' \((Add|Relu)\) is on a cycle/);
    await rejects(encodeModel(cycle), /node 'loop[AB]'.*cycle/);
    const missing = tiny([node('reader', 'Add', ['x', 'nowhere'], ['y'])]);
    assert.throws(() => sortGraph(missing.graph), /node 'reader' \(Add\) reads 'nowhere', which no node, input or initializer/);
    await rejects(encodeModel(missing), /node 'reader'.*'nowhere'/);
  });

  test('u2net-like shuffled: the same layers, bottleneck, α and CAM as the file in order', async () => {
    const ref = zooReference('u2net-like');
    const inOrder = await openZoo('u2net-like', 'model.onnx');
    const shuffled = await openZoo('u2net-like', 'model.shuffled.onnx');
    try {
      const names = (ad: OnnxModelAdapter) =>
        ad
          .layers()
          .map((l) => `${l.name} ${l.outputShape.join('x')}`)
          .sort();
      assert.equal(inOrder.layers().length, 252);
      assert.deepEqual(names(shuffled), names(inOrder));
      assert.equal(new Explainer(shuffled).bottleneck, new Explainer(inOrder).bottleneck);
      for (const l of ref.json.layers) {
        for (const region of ['pixel', 'box'] as const) {
          const a = await zooAlphaCam(shuffled, ref, l.onnx, region);
          const b = await zooAlphaCam(inOrder, ref, l.onnx, region);
          assert.ok(relativeError(a.alpha, b.alpha) <= 1e-6, `${l.role}/${region}: α as in order`);
          assert.ok(relativeError(a.cam, b.cam) <= 1e-6, `${l.role}/${region}: CAM as in order`);
          // And equal to PyTorch's (float64) within 1e-4 (measured ≤ 7.1e-5: the decoder CAM; docs/zoo.md's float32 floors).
          assert.ok(relativeError(a.alpha, ref.get(`alpha64/${l.role}/${region}`)) <= 1e-4, `${l.role}/${region}: α = PyTorch`);
          assert.ok(relativeError(a.cam, ref.get(`cam64/${l.role}/${region}`)) <= 1e-4, `${l.role}/${region}: CAM = PyTorch`);
        }
      }
    } finally {
      inOrder.dispose();
      shuffled.dispose();
    }
  });
});

describe('float16 and bfloat16 weights', () => {
  // Measured on the zoo (docs/onnx.md, "float16"): float16 weights alone move α by ≤ 3.3e-3 and the CAM by ≤ 5.3e-2
  // (relative to the largest value) from PyTorch's float32 reference at the layers below; U²-Net's encoder and
  // bottleneck gradients are not comparable (the rounded weights flip ReLU/MaxPool decisions: random relative weight
  // noise of 2^-11 on the float32 file moves them as much).
  const cases: Array<[string, string, number, number]> = [
    ['u2net-like', 'decoder', 1e-3, 0.1],
    ['segformer-b0-like', 'bottleneck', 1e-2, 5e-3],
    ['segformer-b0-like', 'decoder', 1e-3, 5e-3],
    ['nnunet-like', 'decoder', 1e-3, 5e-3],
  ];
  for (const [model, role, alphaTol, camTol] of cases) {
    test(`${model} f16 at the ${role}: α within ${alphaTol}, CAM within ${camTol} of PyTorch (float32)`, async () => {
      const ref = zooReference(model);
      const ad = await openZoo(model, 'model.f16.onnx');
      try {
        assert.match(ad.notes.join(' '), /float16\/bfloat16 weights/);
        const layer = ref.json.layers.find((l) => l.role === role)?.onnx as string;
        for (const region of ['pixel', 'box'] as const) {
          const r = await zooAlphaCam(ad, ref, layer, region);
          const ea = relativeError(r.alpha, ref.get(`alpha/${role}/${region}`));
          const ec = relativeError(r.cam, ref.get(`cam/${role}/${region}`));
          assert.ok(ea <= alphaTol, `${region}: α error ${ea}`);
          assert.ok(ec <= camTol, `${region}: CAM error ${ec}`);
          assert.ok(ea > 0, 'the float16 file is not the float32 one');
        }
      } finally {
        ad.dispose();
      }
    });
  }

  test('bfloat16 weights: widened exactly; the gradient is the weight (hand value)', async () => {
    // y = Cast_f32(Cast_bf16(x) · w), w = 1.5 in bfloat16 (0x3FC0): ∂(Σ y)/∂x = 1.5 everywhere.
    const m = tiny([
      node('to_bf16', 'Cast', ['x'], ['xb'], [{ name: 'to', type: 2, i: BFLOAT16 }]),
      node('scale', 'Mul', ['xb', 'w'], ['yb']),
      node('to_f32', 'Cast', ['yb'], ['y'], [{ name: 'to', type: 2, i: DataType.FLOAT }]),
    ]);
    m.graph.initializer.push({ name: 'w', dims: [], dataType: BFLOAT16, rawData: Uint8Array.of(0xc0, 0x3f) });
    const ad = await OnnxModelAdapter.create(encodeModel(m), nodeRuntime);
    try {
      const x = tf.tensor4d([0.5, -1, 2, 3], [1, 2, 2, 1]);
      const pass = await ad.forward(x);
      const g = await pass.gradient(INPUT_LAYER, { weights: new Float32Array([1, 1, 1, 1]), on: 'logits', offset: 0 });
      assert.deepEqual(Array.from(g.gradients.dataSync()), [1.5, 1.5, 1.5, 1.5]);
      assert.equal(g.score, 1.5 * (0.5 - 1 + 2 + 3));
      // ONNX Runtime's CPU kernels have no bfloat16 Mul: predict falls back to the widened graph (exact here).
      assert.deepEqual(Array.from(await ad.predictNchw(Float32Array.of(0.5, -1, 2, 3))), [0.75, -1.5, 3, 4.5]);
      tf.dispose([x, g.activations, g.gradients]);
      pass.dispose();
    } finally {
      ad.dispose();
    }
  });
});

describe('the activation behind Cast nodes', () => {
  test('u2net-like f16: the Sigmoid behind the output Cast; predict = ONNX Runtime’s own output thresholded, on every pixel', async () => {
    const ref = zooReference('u2net-like');
    for (const file of ['model.f16.onnx', 'model.f16.shuffled.onnx', 'model.onnx']) {
      const ad = await openZoo('u2net-like', file);
      try {
        assert.equal(ad.output.activation, 'sigmoid', file);
        const logits = await ad.predictNchw(ref.get('input'));
        const session = await nodeRuntime.InferenceSession.create(readFileSync(`${ZOO}/u2net-like/${file}`));
        const own = await session.run({ input: new nodeRuntime.Tensor('float32', ref.get('input'), [1, 3, 64, 64]) });
        const p = own.output.data as Float32Array;
        await session.release();
        let same = 0;
        for (let i = 0; i < p.length; i++) if (logits[i] > 0 === p[i] > 0.5) same++;
        assert.equal(same, p.length, `${file}: ${same} of ${p.length} pixels agree`);
      } finally {
        ad.dispose();
      }
    }
  });
});

describe('quantised models (straight-through)', () => {
  test('segformer-b0-like int8: explained on the dequantised float graph, said so; α close to PyTorch’s', async () => {
    const ref = zooReference('segformer-b0-like');
    const ad = await openZoo('segformer-b0-like', 'model.int8.onnx');
    try {
      assert.match(ad.notes.join(' '), /quantised model: .*straight-through.*MatMulInteger/);
      for (const l of ref.json.layers.filter((x) => x.role !== 'encoder')) {
        for (const region of ['pixel', 'box'] as const) {
          const r = await zooAlphaCam(ad, ref, l.onnx, region);
          // Measured: cosine ≥ 0.9996, relative error ≤ 2.2e-2 (the weights' quantisation error).
          assert.ok(cosine(r.alpha, ref.get(`alpha/${l.role}/${region}`)) >= 0.999, `${l.role}/${region}`);
          assert.ok(relativeError(r.alpha, ref.get(`alpha/${l.role}/${region}`)) <= 5e-2, `${l.role}/${region}`);
        }
      }
    } finally {
      ad.dispose();
    }
  });

  test('u2net-like int8: the same layers as the float file; predict runs the quantised file as ONNX Runtime does', async () => {
    const ref = zooReference('u2net-like');
    const ad = await openZoo('u2net-like', 'model.int8.onnx');
    const f32 = await openZoo('u2net-like', 'model.onnx');
    try {
      assert.deepEqual(
        ad.layers().map((l) => l.name),
        f32.layers().map((l) => l.name),
      );
      const logits = await ad.predictNchw(ref.get('input'));
      const session = await nodeRuntime.InferenceSession.create(readFileSync(`${ZOO}/u2net-like/model.int8.onnx`));
      const own = await session.run({ input: new nodeRuntime.Tensor('float32', ref.get('input'), [1, 3, 64, 64]) });
      const p = own.output.data as Float32Array;
      await session.release();
      for (let i = 0; i < p.length; i++) assert.equal(logits[i] > 0, p[i] > 0.5, `pixel ${i}`);
      const r = await zooAlphaCam(ad, ref, ref.json.layers[2].onnx, 'box');
      assert.ok(cosine(r.alpha, ref.get('alpha/decoder/box')) >= 0.999);
    } finally {
      ad.dispose();
      f32.dispose();
    }
  });
});

describe('QDQ models (straight-through)', () => {
  test('QuantizeLinear → DequantizeLinear on the input, DequantizeLinear weights: ∂S/∂x is the dequantised weight (hand value)', async () => {
    // y = Conv1x1(DQ(Q(x)), DQ(W_q)) with W_q = 6 (int8), w_scale = 0.25, w_zero = 2 → w = (6 − 2)·0.25 = 1.
    // Straight-through: the quantiser is the identity, so ∂(Σ y)/∂x = 1 at every pixel and S = Σ x.
    const m = tiny(
      [
        node('q', 'QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('dq', 'DequantizeLinear', ['xq', 'xs', 'xz'], ['xd']),
        node('dqw', 'DequantizeLinear', ['wq', 'ws', 'wz'], ['w']),
        node('conv', 'Conv', ['xd', 'w'], ['y'], [{ name: 'kernel_shape', type: 7, ints: [1, 1] }]),
      ],
      (mm) => {
        mm.graph.initializer.push(
          { name: 'xs', dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(0.5).buffer) },
          { name: 'xz', dims: [], dataType: DataType.UINT8, rawData: Uint8Array.of(10) },
          { name: 'wq', dims: [1, 1, 1, 1], dataType: DataType.INT8, rawData: Uint8Array.of(6) },
          { name: 'ws', dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(0.25).buffer) },
          { name: 'wz', dims: [], dataType: DataType.INT8, rawData: Uint8Array.of(2) },
        );
      },
    );
    const ad = await OnnxModelAdapter.create(encodeModel(m), nodeRuntime);
    try {
      assert.match(ad.notes.join(' '), /QuantizeLinear → DequantizeLinear/);
      const x = tf.tensor4d([0.3, -1.2, 2.2, 3.1], [1, 2, 2, 1]);
      const pass = await ad.forward(x);
      const g = await pass.gradient(INPUT_LAYER, { weights: new Float32Array([1, 1, 1, 1]), on: 'logits', offset: 0 });
      assert.deepEqual(Array.from(g.gradients.dataSync()), [1, 1, 1, 1]);
      assert.ok(Math.abs(g.score - (0.3 - 1.2 + 2.2 + 3.1)) < 1e-6, `S = ${g.score}`);
      // predict runs the quantised file: x rounded to the 0.5 grid (zero point 10).
      assert.deepEqual(Array.from(await ad.predictNchw(Float32Array.of(0.3, -1.2, 2.2, 3.1))), [0.5, -1, 2, 3]);
      tf.dispose([x, g.activations, g.gradients]);
      pass.dispose();
    } finally {
      ad.dispose();
    }
  });
});

describe('ONNX Runtime failures are typed', () => {
  test('an op ONNX Runtime does not know: a model error naming the node, not a crash', async () => {
    const m = tiny([node('mystery', 'NoSuchOp', ['x'], ['y'])]);
    await rejects(encodeModel(m), /ONNX Runtime failed loading the model: .*NoSuchOp/);
  });
});
