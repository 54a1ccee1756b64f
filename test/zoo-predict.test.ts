/**
 * Every zoo file predicts exactly as ONNX Runtime does: for each committed file (float32, float16,
 * int8, shuffled node order) and each generated torchvision file when present, the label the
 * Explainer's forward pass gives every output pixel (argmax over classes, or logit > 0 behind a
 * sigmoid) equals the label of ONNX Runtime's own run of the unmodified file (argmax, or
 * probability > 0.5). The reference is the file run as shipped, not our prepared graph.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { nhwcToNchw } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { readImageFile } from '../src/io/files.js';
import { loadExplainer } from '../src/node.js';
import { imageToInput } from '../src/preprocess.js';
import { predictLabels } from '../src/prediction.js';
import { cli } from './helpers/cli.js';
import { openZoo, ZOO, zooInput, zooReference } from './helpers/zoo.js';

/** Labels of ONNX Runtime's own output [1, K, H, W]: argmax over K, or p > 0.5 for one channel. */
function ortLabels(p: Float32Array, dims: readonly number[]): Int32Array {
  const [, k, h, w] = dims;
  const hw = h * w;
  const out = new Int32Array(hw);
  for (let i = 0; i < hw; i++) {
    if (k === 1) {
      out[i] = p[i] > 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let c = 1; c < k; c++) if (p[c * hw + i] > p[best * hw + i]) best = c;
    out[i] = best;
  }
  return out;
}

const models = readdirSync(ZOO, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'generated' && existsSync(join(ZOO, d.name, 'reference.json')))
  .map((d) => d.name);
const generated = existsSync(join(ZOO, 'generated'))
  ? readdirSync(join(ZOO, 'generated'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(ZOO, 'generated', d.name, 'reference.json')))
      .map((d) => `generated/${d.name}`)
  : [];

describe('every zoo file predicts exactly as ONNX Runtime runs it', () => {
  for (const model of [...models, ...generated]) {
    const files = readdirSync(join(ZOO, model)).filter((f) => f.endsWith('.onnx'));
    for (const file of files) {
      test(`${model}/${file}`, { timeout: 600_000 }, async () => {
        const ref = zooReference(model);
        const [, c, h, w] = ref.json.tensors.input.shape;
        const session = await nodeRuntime.InferenceSession.create(readFileSync(join(ZOO, model, file)));
        let want: Int32Array;
        try {
          const res = await session.run({ [session.inputNames[0]]: new nodeRuntime.Tensor('float32', ref.get('input'), [1, c, h, w]) });
          const out = res[session.outputNames[0]];
          want = ortLabels(out.data as Float32Array, out.dims);
        } finally {
          await session.release();
        }
        const ad = await openZoo(model, file);
        const before = tf.memory().numTensors;
        try {
          const x = zooInput(ref);
          const pass = await ad.forward(x);
          // What the Explainer predicts from (src/explain.ts): the shipped file's logits when the graph was modified.
          const got = predictLabels(pass.predictionOutput ?? pass.output, ad.output);
          pass.dispose();
          x.dispose();
          assert.equal(got.length, want.length);
          const differ: number[] = [];
          for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) differ.push(i);
          assert.equal(differ.length, 0, `${differ.length} of ${got.length} pixels differ (first: ${differ.slice(0, 5).join(', ')})`);
        } finally {
          ad.dispose();
        }
        assert.equal(tf.memory().numTensors, before);
      });
    }
  }
});

describe('the Explainer (what `predict` and class regions use) on a modified graph', () => {
  test('u2net-like f16 and int8: predict(image) equals ONNX Runtime on the same preprocessed input', { timeout: 600_000 }, async () => {
    const image = await readImageFile(join(ZOO, 'u2net-like', 'input.png'));
    for (const file of ['model.f16.onnx', 'model.int8.onnx']) {
      const path = join(ZOO, 'u2net-like', file);
      const explainer = await loadExplainer(path);
      try {
        const { height, width, channels } = explainer.adapter.input;
        const x = imageToInput(image, height, width, channels);
        const nchw = nhwcToNchw(x.dataSync() as Float32Array, 1, height, width, channels);
        x.dispose();
        const session = await nodeRuntime.InferenceSession.create(readFileSync(path));
        let want: Int32Array;
        try {
          const res = await session.run({ [session.inputNames[0]]: new nodeRuntime.Tensor('float32', nchw, [1, channels, height, width]) });
          const out = res[session.outputNames[0]];
          want = ortLabels(out.data as Float32Array, out.dims);
        } finally {
          await session.release();
        }
        const got = (await explainer.predict(image)).labels;
        let differ = 0;
        for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) differ++;
        assert.equal(differ, 0, `${file}: ${differ} of ${got.length} pixels differ`);
      } finally {
        explainer.dispose();
      }
    }
  });
});

describe('the explanation JSON says how the graph explained differs from the file', () => {
  test('float16 and int8 files carry their note; the float32 file an empty list', { timeout: 600_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-zoo-notes-'));
    try {
      const expected: Array<[string, RegExp | null]> = [
        ['model.onnx', null],
        ['model.f16.onnx', /^float16\/bfloat16 weights: .*float32/],
        ['model.int8.onnx', /^quantised model: .*straight-through/],
      ];
      for (const [file, note] of expected) {
        const json = join(dir, `${file}.json`);
        const r = cli(
          'explain',
          '-m',
          join(ZOO, 'u2net-like', file),
          '-i',
          join(ZOO, 'u2net-like', 'input.png'),
          '--pixel',
          '30,30',
          '-o',
          join(dir, `${file}.png`),
          '--json',
          json,
        );
        assert.equal(r.code, 0, r.stderr);
        const notes = (JSON.parse(readFileSync(json, 'utf8')) as { notes: string[] }).notes;
        if (note === null) assert.deepEqual(notes, [], file);
        else {
          assert.equal(notes.length, 1, file);
          assert.match(notes[0], note, file);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
