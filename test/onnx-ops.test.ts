/**
 * The compiled gradient graph against central finite differences, one tiny graph per supported
 * op (fixtures/onnx/ops, exported by torch.onnx.export — see scripts/onnx/README.md — plus a few
 * graphs written here). Forward evaluations for the differences are ONNX Runtime runs of the
 * original model (or its tail from the layer on), so neither side shares code with the other.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER } from '../src/engine/contract.js';
import type { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { nchwToNhwc, nhwcToNchw } from '../src/engine/onnx/layout.js';
import { OnnxModelAdapter as Adapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, decodeModel, encodeModel, type ModelProto } from '../src/engine/onnx/proto.js';
import { SUPPORTED_OPS } from '../src/engine/onnx/gradient.js';
import { SegGradCamError } from '../src/errors.js';
import { finiteDifferences, gaussian, uniform } from '../scripts/onnx/reference.js';
import { OP_MODELS_2 } from './helpers/op-models-2.js';
import { useCpu } from './helpers/setup.js';

before(useCpu);

const DIR = new URL('../fixtures/onnx/ops/', import.meta.url);

/**
 * Compares the adapter's ∂S/∂(layer) with central differences at every element. An element
 * whose ±ε step crosses a kink (ReLU, max-pool switch, clip bound) is re-measured with ε/10.
 */
async function checkLayer(ad: OnnxModelAdapter, layer: string, seed: number): Promise<{ diff: number; scale: number; retried: number }> {
  const an = ad.analysis;
  const [, c, h, w] = ad.inputDims;
  const xN = uniform(c * h * w, seed);
  const x = tf.tensor4d(nchwToNhwc(xN, 1, c, h, w), [1, h, w, c]);
  const pass = await ad.forward(x);
  x.dispose();
  const weights = gaussian(pass.logitsData.length, seed + 1);
  const cot = ad.cotangentNchw(weights);
  const t = ad.resolve(layer);
  const g = await pass.gradient(layer, { weights, on: 'logits', offset: 0 });
  const dims = an.shape(t);
  const ours = nhwcToNchw(g.gradients.dataSync(), dims[0], dims[2], dims[3], dims[1]);
  tf.dispose([g.activations, g.gradients]);
  pass.dispose();
  const idx = Array.from({ length: ours.length }, (_, i) => i);
  const eps = 1e-3;
  const fd = await finiteDifferences(an, t, ad.logitsName, xN, cot, idx, eps);
  let scale = 0;
  for (const v of fd) scale = Math.max(scale, Math.abs(v));
  const tol = (rel: number) => rel * scale + 1e-4;
  const bad = idx.filter((i) => Math.abs(fd[i] - ours[i]) > tol(2e-3));
  let diff = 0;
  for (const i of idx) if (!bad.includes(i)) diff = Math.max(diff, Math.abs(fd[i] - ours[i]));
  if (bad.length > 0) {
    const fine = await finiteDifferences(an, t, ad.logitsName, xN, cot, bad, eps / 10);
    bad.forEach((i, k) => {
      const d = Math.abs(fine[k] - ours[i]);
      assert.ok(d <= tol(2e-2), `${layer}[${i}]: gradient ${ours[i]} vs finite differences ${fd[i]} (ε) and ${fine[k]} (ε/10)`);
      diff = Math.max(diff, d);
    });
  }
  assert.ok(scale > 1e-3, `${layer}: the check needs non-trivial gradients (max |∂S/∂A| = ${scale})`);
  assert.ok(diff <= tol(2e-3) || bad.length > 0, `${layer}: max difference ${diff} (scale ${scale})`);
  return { diff, scale, retried: bad.length };
}

/** The input and up to two inner layers (the first, and the one in the middle of the list). */
function layersToCheck(ad: OnnxModelAdapter): string[] {
  const inner = ad
    .layers()
    .map((l) => l.name)
    .filter((n) => n !== ad.logitsName);
  const picked = new Set<string>();
  if (inner.length > 0) picked.add(inner[0]);
  if (inner.length > 2) picked.add(inner[Math.floor(inner.length / 2)]);
  return [INPUT_LAYER, ...picked];
}

describe('gradient graph vs finite differences, one graph per op (torch.onnx.export fixtures)', () => {
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.onnx'))
    .sort();
  test('the fixtures are there', () => assert.ok(files.length >= 35, `only ${files.length} fixtures`));
  for (const f of files) {
    test(f.replace('.onnx', ''), async () => {
      const ad = await Adapter.create(readFileSync(new URL(f, DIR)), nodeRuntime);
      try {
        for (const [k, layer] of layersToCheck(ad).entries()) await checkLayer(ad, layer, 11 + k);
      } finally {
        ad.dispose();
      }
    });
  }
});

/** A small model written here: input [1, 3, 6, 8] → 1x1 conv → `body` → output. */
function handModel(opset: number, body: (b: GraphBuilder, x: string) => string, outDims: number[]): ModelProto {
  const model = emptyModel(opset);
  const g = model.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 6, 8]));
  const w = b.floats('w', [4, 3, 1, 1], gaussian(12, 3, 0.7));
  const x = b.op('Conv', ['input', w], { kernel_shape: { ints: [1, 1] } });
  const y = body(b, x);
  b.node('Identity', [y], {}, [b.claim('output')]);
  g.output.push(valueInfo('output', DataType.FLOAT, outDims));
  return model;
}

const HAND: Array<[string, ModelProto]> = [
  [
    'Dropout (inference) and Identity',
    handModel(13, (b, x) => b.op('Tanh', [b.node('Dropout', [b.op('Identity', [x])], {}, 2)[0]]), [1, 4, 6, 8]),
  ],
  [
    'Flatten → MatMul → Reshape',
    handModel(
      13,
      (b, x) =>
        b.op('Reshape', [
          b.op('MatMul', [b.op('Flatten', [x], { axis: { i: 1 } }), b.floats('m', [192, 24], gaussian(192 * 24, 9, 0.1))]),
          b.ints('shape', [1, 2, 3, 4]),
        ]),
      [1, 2, 3, 4],
    ),
  ],
  [
    'Sub and Div by a layer (both operands on the path)',
    handModel(
      13,
      (b, x) => b.op('Div', [b.op('Sub', [x, b.op('Tanh', [x])]), b.op('Add', [b.op('Mul', [x, x]), b.scalar('one', 1)])]),
      [1, 4, 6, 8],
    ),
  ],
  [
    'Unsqueeze, Squeeze, Cast, Sum',
    handModel(
      13,
      (b, x) => {
        const u = b.op('Unsqueeze', [x, b.ints('ax', [2])]);
        const s = b.op('Cast', [b.op('Squeeze', [b.op('Tanh', [u]), b.ints('ax2', [2])])], { to: { i: DataType.FLOAT } });
        return b.op('Sum', [x, s, b.op('Sigmoid', [x])]);
      },
      [1, 4, 6, 8],
    ),
  ],
];

describe('gradient graph vs finite differences, graphs written here', () => {
  for (const [name, model] of HAND) {
    test(name, async () => {
      const ad = await Adapter.create(encodeModel(model), nodeRuntime);
      try {
        for (const [k, layer] of layersToCheck(ad).entries()) await checkLayer(ad, layer, 21 + k);
      } finally {
        ad.dispose();
      }
    });
  }
});

describe('errors', () => {
  test('an unsupported op on the gradient path is named, with its node', async () => {
    const model = handModel(13, (b, x) => b.op('Cos', [x], {}, 'my_cos_node'), [1, 4, 6, 8]);
    const ad = await Adapter.create(encodeModel(model), nodeRuntime);
    try {
      assert.throws(
        () => ad.gradientGraph(INPUT_LAYER),
        (err: unknown) =>
          err instanceof SegGradCamError && err.code === 'model' && /'Cos'/.test(err.message) && /my_cos_node/.test(err.message),
      );
      // The same op off the path (downstream layers) does not matter: the gradient at the Cos output builds.
      const cosOut = ad.analysis.nodes.find((n) => n.opType === 'Cos')?.output[0] as string;
      assert.ok(ad.gradientGraph(cosOut).backwardNodes >= 1);
    } finally {
      ad.dispose();
    }
  });

  test('opsets before 10 are refused with a clear error (Upsample lives there; opset 11+ exports use Resize)', async () => {
    const model = handModel(
      9,
      (b, x) => b.op('Upsample', [x, b.floats('s', [4], [1, 1, 2, 2])], { mode: { s: 'nearest' } }),
      [1, 4, 12, 16],
    );
    const ad = await Adapter.create(encodeModel(model), nodeRuntime);
    try {
      assert.throws(
        () => ad.gradientGraph(INPUT_LAYER),
        (err: unknown) => err instanceof SegGradCamError && /opset 9/.test(err.message),
      );
    } finally {
      ad.dispose();
    }
  });

  test('an unknown layer is a layer error listing the valid ones', async () => {
    const ad = await Adapter.create(readFileSync(new URL('relu.onnx', DIR)), nodeRuntime);
    try {
      assert.throws(
        () => ad.resolve('nope'),
        (err: unknown) => err instanceof SegGradCamError && err.code === 'layer' && /valid layers: input, /.test(err.message),
      );
    } finally {
      ad.dispose();
    }
  });

  test('not an ONNX file', async () => {
    await assert.rejects(
      Adapter.create(new TextEncoder().encode('{"format": "layers-model"}'), nodeRuntime),
      (err: unknown) => err instanceof SegGradCamError && err.code === 'model',
    );
  });

  test('every op in the supported list has a test graph', () => {
    const tested = new Set<string>();
    for (const f of readdirSync(DIR).filter((x) => x.endsWith('.onnx'))) {
      for (const n of decodeModel(readFileSync(new URL(f, DIR))).graph.node) tested.add(n.opType);
    }
    for (const [, model] of HAND) for (const n of model.graph.node) tested.add(n.opType);
    for (const [, model] of OP_MODELS_2) for (const n of model.graph.node) tested.add(n.opType);
    assert.deepEqual(
      SUPPORTED_OPS.filter((op) => !tested.has(op)),
      [],
    );
  });
});
