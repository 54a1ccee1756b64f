/**
 * Loading an ONNX model learns its shapes without running it (ONNX Runtime's shape inference,
 * src/engine/onnx/infer-shapes.ts), and `predict` runs the model once, in one session:
 *  - on every ONNX file of the project (fixtures and models), the shapes, element types and
 *    shape-arithmetic constants inferred equal those of a run of the model (the probe);
 *  - loading a model (what `layers` does) runs no session on the model's input, and lists the
 *    same layers, shapes and bottleneck as a load that probes;
 *  - `predict` (Explainer.predict with keepPass false) runs one session once, which returns the
 *    logits and nothing else, and its labels equal ONNX Runtime's own run of the file.
 * Sessions are counted through the runtime handed to the engine (a wrapper of onnxruntime-node).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Explainer } from '../src/explain.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { GraphAnalysis } from '../src/engine/onnx/analysis.js';
import { inferShapes } from '../src/engine/onnx/infer-shapes.js';
import { nhwcToNchw } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { prepareModel } from '../src/engine/onnx/prepare.js';
import { nodeOutputs, probeByRunning } from '../src/engine/onnx/probe.js';
import { decodeModel } from '../src/engine/onnx/proto.js';
import { readImageFile } from '../src/io/files.js';
import { countingRuntime } from './helpers/counting-runtime.js';
import { imageToInput } from '../src/preprocess.js';

function onnxFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? onnxFiles(join(dir, d.name)) : d.name.endsWith('.onnx') ? [join(dir, d.name)] : [],
  );
}

const FILES = [...onnxFiles('fixtures'), ...onnxFiles('models')].sort();

describe('shapes inferred without a run equal those of a run (the probe), on every ONNX file of the project', () => {
  test('there are files to check', () => assert.ok(FILES.length >= 40, `${FILES.length} files`));
  for (const file of FILES) {
    test(file, { timeout: 120_000 }, async () => {
      const { model } = prepareModel(decodeModel(readFileSync(file)));
      const inits = new Set(model.graph.initializer.map((t) => t.name));
      const input = model.graph.input.find((i) => !inits.has(i.name));
      assert.ok(input);
      // Free dims (batch, height, width) at sizes no file fixes: 1 and 24.
      const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d, k) =>
        Number(d.dimValue ?? 0) > 0 ? Number(d.dimValue) : k === 0 ? 1 : 24,
      );
      const inferred = await inferShapes(nodeRuntime, model, nodeOutputs(model), input.name, dims);
      assert.ok(inferred, 'every shape inferred');
      const probed = await probeByRunning(nodeRuntime, model, input.name, dims);
      inferred.set(input.name, { dims, dataType: 1 });
      assert.deepEqual([...inferred.keys()].sort(), [...probed.keys()].sort(), 'the same tensors');
      const options = { inputName: input.name, outputName: model.graph.output[0].name, opset: 13 };
      const a = new GraphAnalysis(model, probed, options);
      const b = new GraphAnalysis(model, inferred, options);
      for (const [name, p] of probed) {
        assert.deepEqual(inferred.get(name)?.dims, p.dims, `shape of ${name}`);
        assert.equal(inferred.get(name)?.dataType, p.dataType, `type of ${name}`);
        // What the analysis reads as a constant (shape arithmetic): the same values.
        const [ca, cb] = [a.constant(name), b.constant(name)];
        assert.deepEqual(cb && { ...cb, data: Array.from(cb.data) }, ca && { ...ca, data: Array.from(ca.data) }, `constant ${name}`);
      }
    });
  }
});

const U2 = 'fixtures/zoo/u2net-like';

describe('layers and predict on a float16 file out of topological order (the shape of the 1024² ISNet files)', () => {
  test(
    'loading runs no session on the model input and lists the layers, shapes and bottleneck a probing load lists',
    { timeout: 300_000 },
    async () => {
      const bytes = readFileSync(join(U2, 'model.f16.shuffled.onnx'));
      const c = countingRuntime();
      const inferred = await OnnxModelAdapter.create(bytes, c.ort);
      const probed = await OnnxModelAdapter.create(bytes, nodeRuntime, { shapes: 'probe' });
      try {
        assert.deepEqual(
          c.runs.filter((r) => r.feeds.includes(inferred.inputName)),
          [],
          'no run of the model at load',
        );
        assert.ok(inferred.layers().length > 100);
        assert.deepEqual(inferred.layers(), probed.layers());
        assert.equal(new Explainer(inferred).bottleneck, new Explainer(probed).bottleneck);
      } finally {
        inferred.dispose();
        probed.dispose();
      }
    },
  );

  for (const file of ['model.f16.shuffled.onnx', 'model.int8.onnx', 'model.onnx']) {
    test(
      `${file}: predict runs one session once, returning the logits only; labels equal ONNX Runtime's`,
      { timeout: 300_000 },
      async () => {
        const bytes = readFileSync(join(U2, file));
        const image = await readImageFile(join(U2, 'input.png'));
        const c = countingRuntime();
        const ad = await OnnxModelAdapter.create(bytes, c.ort);
        const explainer = new Explainer(ad);
        try {
          const [runs, created] = [c.runs.length, c.created()];
          const got = (await explainer.predict(image, { keepPass: false })).labels;
          const { output } = explainer.adapter;
          assert.equal(c.created() - created, 1, 'one session');
          assert.deepEqual(c.runs.slice(runs), [{ feeds: [ad.inputName], elements: output.height * output.width * output.channels }]);
          // ONNX Runtime on the file as shipped, the same preprocessed input: p > 0.5 (one sigmoid channel).
          const { height, width, channels } = explainer.adapter.input;
          const x = imageToInput(image, height, width, channels);
          const nchw = nhwcToNchw(x.dataSync() as Float32Array, 1, height, width, channels);
          x.dispose();
          const session = await nodeRuntime.InferenceSession.create(bytes);
          const res = await session.run({ [session.inputNames[0]]: new nodeRuntime.Tensor('float32', nchw, [1, channels, height, width]) });
          await session.release();
          const p = res[session.outputNames[0]].data as Float32Array;
          assert.equal(output.channels, 1);
          let differ = 0;
          for (let i = 0; i < got.length; i++) if (got[i] !== (p[i] > 0.5 ? 1 : 0)) differ++;
          assert.equal(differ, 0, `${differ} of ${got.length} pixels differ`);
          // The pass-keeping prediction (what explanations start from) gives the same labels.
          assert.deepEqual((await explainer.predict(image)).labels, got);
        } finally {
          explainer.dispose();
        }
      },
    );
  }
});
