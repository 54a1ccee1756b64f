/**
 * Methods ask engines for capabilities: an engine without one is a typed "not supported by this
 * model" error naming the engine, and the pass-counting wrapper of the evaluation forwards every
 * capability without touching the adapter it wraps.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { box } from '../src/region/region.js';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { instrumentAdapter } from '../src/eval/cost.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphBuilder, emptyModel, valueInfo } from '../src/engine/onnx/builder.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DataType, encodeModel } from '../src/engine/onnx/proto.js';
import { tinyUnet } from './helpers/tiny-unet.js';
import { randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/** input [1, 3, 8, 8] → 1x1 Conv (2 classes) → Relu → output. */
async function onnxAdapter(): Promise<OnnxModelAdapter> {
  const model = emptyModel(13);
  const g = model.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 8, 8]));
  const w = b.floats('w', [2, 3, 1, 1], Float32Array.from([0.5, -0.25, 0.75, -0.5, 1, 0.25]));
  const x = b.op('Conv', ['input', w], { kernel_shape: { ints: [1, 1] } });
  b.node('Relu', [x], {}, [b.claim('output')]);
  g.output.push(valueInfo('output', DataType.FLOAT, [1, 2, 8, 8]));
  return OnnxModelAdapter.create(encodeModel(model), nodeRuntime);
}

describe('capabilities', () => {
  test('CAM and LRP on an engine without them: a typed error that names the engine', async () => {
    // The ONNX adapter offers both since issue 17: the same adapter with the two capabilities hidden.
    const full = await onnxAdapter();
    const stripped = Object.create(full, { headKernel: { value: undefined }, relevance: { value: undefined } }) as OnnxModelAdapter;
    const explainer = new Explainer(stripped);
    const layer = explainer.layers()[0].name;
    for (const [method, name] of [
      ['cam', 'CAM'],
      ['lrp', 'LRP'],
    ]) {
      await assert.rejects(explainer.explain(randomImage(8, 8), { region: box(0, 0, 4, 4), classId: 1, layer, method }), (err: unknown) => {
        assert.ok(err instanceof SegGradCamError, String(err));
        assert.equal(err.code, 'model');
        assert.match(err.message, new RegExp(`^${name} is not supported by this model: this is an ONNX model \\(`));
        return true;
      });
    }
    explainer.dispose();
  });

  test('the counting adapter forwards capabilities and leaves the adapter as it was', async () => {
    const adapter = new LayersModelAdapter(tinyUnet(8, 3, 4));
    const own = Object.keys(adapter).sort();
    const counter = instrumentAdapter(adapter);
    assert.deepEqual(Object.keys(adapter).sort(), own, 'nothing patched onto the adapter');
    assert.equal(counter.adapter.kind, 'layers-model');
    assert.equal(counter.adapter.parameterCount?.(), adapter.model.countParams());
    assert.equal(counter.adapter.layersModel?.(), adapter.model);
    const counted = new Explainer(counter.adapter);
    const plain = new Explainer(new LayersModelAdapter(tinyUnet(8, 3, 4)));
    const request = { region: box(1, 1, 5, 5), classId: 1, layer: 'bottleneck', method: 'lrp' };
    const image = randomImage(8, 8, 3);
    const a = await counted.explain(image, request);
    const b = await plain.explain(image, request);
    assert.deepEqual(Array.from(a.cam), Array.from(b.cam), 'LRP runs through the wrapper');
    assert.deepEqual(counter.take(), { forward: 1, backward: 0 }, 'the forward pass is counted');
    counter.restore();
    await counted.explain(image, { ...request, method: 'seg-grad-cam' });
    assert.deepEqual(counter.take(), { forward: 0, backward: 0 });
    counted.dispose();
    plain.dispose();
  });
});
