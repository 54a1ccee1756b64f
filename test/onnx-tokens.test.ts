/**
 * Token layers (src/engine/onnx/tokens.ts): a [1, N, C] tensor is listed as its grid's map
 * ([1, h, w, C]), its class token dropped, and its gradient equals finite differences of ONNX
 * Runtime forward runs at the grid view; an ambiguous N needs the `grid` option.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { OnnxModelAdapter as Adapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { nchwToNhwc, nhwcToNchw } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { SegGradCamError } from '../src/errors.js';
import { finiteDifferences, gaussian, uniform } from '../scripts/onnx/reference.js';
import { useCpu } from './helpers/setup.js';

before(useCpu);

/**
 * input [1, 3, 6, 8] → 1x1 conv → tokens [1, 48, 4] → class token prepended [1, 49, 4] → Add
 * ('blocks/Add', the token layer) → LayerNormalization → class token dropped → map → 1x1 conv
 * → output [1, 2, 6, 8]. `decoy` adds an unused 8x6 Resize output (a second grid of 48 cells).
 */
function tokenModel(decoy: boolean): Uint8Array {
  const m = emptyModel(17);
  const g = m.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 6, 8]));
  const x = b.op('Conv', ['input', b.floats('w', [4, 3, 1, 1], gaussian(12, 3, 0.7))], { kernel_shape: { ints: [1, 1] } });
  if (decoy) b.op('Resize', [x, '', '', b.ints('size', [1, 4, 8, 6])], { mode: { s: 'nearest' } });
  const t = b.op('Transpose', [b.op('Reshape', [x, b.ints('s', [1, 4, 48])])], { perm: { ints: [0, 2, 1] } });
  const withCls = b.op('Concat', [b.floats('cls', [1, 1, 4], gaussian(4, 4)), t], { axis: { i: 1 } });
  const layer = b.node('Add', [withCls, b.floats('pos', [1, 49, 4], gaussian(196, 5, 0.3))], {}, ['blocks/Add'])[0];
  const n = b.op('LayerNormalization', [layer, b.floats('ls', [4], uniform(4, 6, 0.5, 1.5)), b.floats('lb', [4], uniform(4, 7))], {
    axis: { i: -1 },
  });
  const tokens = b.op('Slice', [n, b.ints('a', [1]), b.ints('z', [49]), b.ints('ax', [1])]);
  const map = b.op('Reshape', [b.op('Transpose', [tokens], { perm: { ints: [0, 2, 1] } }), b.ints('m', [1, 4, 6, 8])]);
  b.node('Conv', [map, b.floats('w2', [2, 4, 1, 1], gaussian(8, 8))], { kernel_shape: { ints: [1, 1] } }, [b.claim('output')]);
  g.output.push(valueInfo('output', DataType.FLOAT, [1, 2, 6, 8]));
  return encodeModel(m);
}

describe('token layers', () => {
  test('a [1, N+1, C] residual-stream tensor is the 6x8 grid, class token dropped; its gradient equals finite differences', async () => {
    const ad = await Adapter.create(tokenModel(false), nodeRuntime);
    try {
      const layer = ad.layers().find((l) => l.name === 'blocks/Add');
      assert.deepEqual(layer?.outputShape, [1, 6, 8, 4]);
      const xN = uniform(3 * 48, 41);
      const x = tf.tensor4d(nchwToNhwc(xN, 1, 3, 6, 8), [1, 6, 8, 3]);
      const pass = await ad.forward(x);
      x.dispose();
      const weights = gaussian(pass.logitsData.length, 42);
      const lg = await pass.gradient('blocks/Add', { weights, on: 'logits', offset: 0 });
      const ours = nhwcToNchw(lg.gradients.dataSync(), 1, 6, 8, 4);
      tf.dispose([lg.activations, lg.gradients]);
      pass.dispose();
      const idx = Array.from({ length: ours.length }, (_, i) => i);
      const fd = await finiteDifferences(ad.analysis, 'blocks/Add', ad.logitsName, xN, ad.cotangentNchw(weights), idx, 1e-3);
      const scale = Math.max(...Array.from(fd, Math.abs));
      assert.ok(scale > 1e-3);
      for (const i of idx) assert.ok(Math.abs(fd[i] - ours[i]) <= 2e-3 * scale + 1e-4, `[${i}]: ${ours[i]} vs ${fd[i]}`);
    } finally {
      ad.dispose();
    }
  });

  test('when two grids fit N, the layer is not a grid unless the grid option says which', async () => {
    const plain = await Adapter.create(tokenModel(true), nodeRuntime);
    try {
      assert.equal(
        plain.layers().some((l) => l.name === 'blocks/Add'),
        false,
      );
    } finally {
      plain.dispose();
    }
    const given = await Adapter.create(tokenModel(true), nodeRuntime, { grid: [8, 6] });
    try {
      assert.deepEqual(given.layers().find((l) => l.name === 'blocks/Add')?.outputShape, [1, 8, 6, 4]);
    } finally {
      given.dispose();
    }
  });

  test('a malformed grid option is a usage error', async () => {
    await assert.rejects(
      Adapter.create(tokenModel(false), nodeRuntime, { grid: [6, 0] }),
      (err: unknown) => err instanceof SegGradCamError && err.code === 'usage' && /grid/.test(err.message),
    );
  });
});
