/**
 * MediaPipe's selfie segmenter (a GraphModel with depthwise convolutions,
 * AvgPool, half-pixel ResizeBilinear, Relu6, a transposed conv) differentiates
 * on wasm, w.r.t. its input and an intermediate node, and agrees with cpu.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setupBackend, type BackendName } from '../src/backend/index.js';

tf.env().set('PROD', true);

const dir = fileURLToPath(new URL('../models/selfie/', import.meta.url));

async function artifacts(): Promise<tf.io.ModelArtifacts> {
  const json = JSON.parse(readFileSync(dir + 'selfie.json', 'utf8'));
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const bufs: Buffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const p of group.paths) bufs.push(readFileSync(dir + p));
    }
    const all = Buffer.concat(bufs);
    return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer];
  });
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 1e-6;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

test('selfie model: gradients w.r.t. input and an encoder node, wasm = cpu', async () => {
  const art = await artifacts();
  const inner = 'add_4__xeno_compat__1'; // [1,16,16,32], end of the encoder
  const run = async (name: BackendName) => {
    await setupBackend(name);
    const model = await tf.loadGraphModel(tf.io.fromMemory(art));
    const x = tf.randomUniform([1, 256, 256, 3], 0, 1, 'float32', 7);
    const mask = tf.randomUniform([1, 256, 256, 1], 0, 1, 'float32', 8);
    const score = (out: tf.Tensor) => out.mul(mask).sum() as tf.Scalar;
    const gx = tf.grad((xx: tf.Tensor) => score(model.execute({ input_1: xx }, 'segment') as tf.Tensor))(x);
    const a = model.execute({ input_1: x }, inner) as tf.Tensor;
    const ga = tf.grad((aa: tf.Tensor) => score(model.execute({ input_1: x, [inner]: aa }, 'segment') as tf.Tensor))(a);
    const out = [(await gx.data()) as Float32Array, (await ga.data()) as Float32Array];
    tf.dispose([x, mask, gx, a, ga]);
    model.dispose();
    return out;
  };
  const w = await run('wasm');
  const c = await run('cpu');
  const r0 = maxRel(w[0], c[0]);
  const r1 = maxRel(w[1], c[1]);
  assert.ok(r0 < 2e-5, `input gradient: max relative difference ${r0}`);
  assert.ok(r1 < 2e-5, `intermediate gradient: max relative difference ${r1}`);
  assert.ok(c[0].some((v) => v !== 0) && c[1].some((v) => v !== 0), 'gradients are not all zero');
});
