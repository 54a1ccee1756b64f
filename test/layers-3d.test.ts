/**
 * TF.js LayersModels with 3-D layers (Conv3D, MaxPooling3D, AveragePooling3D, UpSampling3D,
 * Conv3DTranspose, 5-D Concatenate/BatchNormalization/activations) as volume models: A, ∂S/∂A,
 * α and the CAM at an encoder, the bottleneck and a decoder layer, for a voxel and a box, equal
 * PyTorch autograd (float64) on the same weights within 1e-4, on the cpu and wasm backends; the
 * layers listed with 3-D shapes, the bottleneck found; no tensor left behind; a model with
 * UpSampling3D (not shipped by tfjs-layers) survives a save/load round trip.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setupBackend } from '../src/backend/index.js';
import { UpSampling3D } from '../src/engine/tfjs-layers/upsampling3d.js';
import { LayersVolumeModel } from '../src/engine/tfjs-layers/volume.js';
import { argmaxLabels, gradCam3d } from '../src/volume/explain.js';

tf.env().set('PROD', true);

const PYTHON = '/usr/bin/python3';
const torchMissing = (() => {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 ? null : `PyTorch is not installed for ${PYTHON}`;
})();
const skip = torchMissing ? `PyTorch reference skipped: ${torchMissing}` : false;

const DIMS: [number, number, number] = [8, 12, 16];
type Shape5 = [number, number, number, number, number];

/** Deterministic values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** A small 3-D U-Net: two levels, max- and average-pooling, nearest up-sampling and an up-convolution, concatenated skips, BN + LeakyReLU. */
function unet3d(): tf.LayersModel {
  const L = tf.layers;
  const x = tf.input({ shape: [...DIMS, 1] });
  const conv = (filters: number, name: string, activation?: 'relu') =>
    L.conv3d({ filters, kernelSize: 3, padding: 'same', name, activation });
  const e1 = conv(4, 'enc1', 'relu').apply(x) as tf.SymbolicTensor;
  const p1 = L.maxPooling3d({ poolSize: 2, name: 'pool1' }).apply(e1) as tf.SymbolicTensor;
  const c2 = conv(8, 'enc2').apply(p1) as tf.SymbolicTensor;
  const b2 = L.batchNormalization({ name: 'enc2_bn' }).apply(c2) as tf.SymbolicTensor;
  const e2 = L.leakyReLU({ alpha: 0.1, name: 'enc2_act' }).apply(b2) as tf.SymbolicTensor;
  const p2 = L.averagePooling3d({ poolSize: 2, name: 'pool2' }).apply(e2) as tf.SymbolicTensor;
  const b = conv(8, 'bottleneck', 'relu').apply(p2) as tf.SymbolicTensor;
  const u2 = new UpSampling3D({ size: 2, name: 'up2' }).apply(b) as tf.SymbolicTensor;
  const k2 = L.concatenate({ axis: -1, name: 'cat2' }).apply([u2, e2]) as tf.SymbolicTensor;
  const d2 = conv(8, 'dec2', 'relu').apply(k2) as tf.SymbolicTensor;
  const u1 = L.conv3dTranspose({ filters: 4, kernelSize: 2, strides: 2, name: 'up1' }).apply(d2) as tf.SymbolicTensor;
  const k1 = L.concatenate({ axis: -1, name: 'cat1' }).apply([u1, e1]) as tf.SymbolicTensor;
  const d1 = conv(4, 'dec1', 'relu').apply(k1) as tf.SymbolicTensor;
  const y = L.conv3d({ filters: 3, kernelSize: 1, activation: 'softmax', name: 'logits' }).apply(d1) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y });
}

/** Seeded weights (BN variances positive); returns them by "layer/weight" name with TF.js shapes. */
function seedWeights(model: tf.LayersModel): Record<string, { shape: number[]; values: number[] }> {
  const out: Record<string, { shape: number[]; values: number[] }> = {};
  let seed = 7;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((w) => {
      const n = (w.shape as number[]).reduce((a, b) => a * b, 1);
      const base = w.originalName.split('/').pop() as string;
      let v = rand(n, seed++);
      if (base === 'moving_variance') v = v.map((x) => 0.5 + Math.abs(x));
      else if (base === 'gamma') v = v.map((x) => 1 + 0.3 * x);
      else v = v.map((x) => x * (base === 'bias' || base === 'beta' || base === 'moving_mean' ? 0.2 : 0.45));
      out[`${layer.name}/${base}`] = { shape: w.shape as number[], values: Array.from(v) };
      return tf.tensor(v, w.shape as number[]);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
  return out;
}

interface Question {
  layer: string;
  voxels: Array<[number, number, number]>;
  cls: number | null;
}
interface Answer {
  layer: string;
  cls: number;
  score: number;
  alpha: number[];
  cam: number[];
  camLinear: number[];
  shape: number[];
  gradients: number[];
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  const scale = Math.max(maxAbs(want), 1e-12);
  assert.ok(d <= 1e-4 * scale, `${what}: off by ${d} (largest ${scale})`);
}

describe('3-D TF.js LayersModels', () => {
  let model: tf.LayersModel;
  let vm: LayersVolumeModel;
  let input: Float32Array;
  let dir: string;
  let weights: Record<string, { shape: number[]; values: number[] }>;
  const questions: Question[] = [];

  before(async () => {
    await setupBackend('cpu');
    model = unet3d();
    weights = seedWeights(model);
    vm = new LayersVolumeModel(model);
    input = rand(DIMS[0] * DIMS[1] * DIMS[2], 99);
    const box: Array<[number, number, number]> = [];
    for (let d = 2; d <= 4; d++) for (let h = 3; h <= 6; h++) for (let w = 4; w <= 9; w++) box.push([d, h, w]);
    for (const layer of ['enc2_act', 'bottleneck', 'dec2'])
      questions.push({ layer, voxels: [[5, 6, 9]], cls: null }, { layer, voxels: box, cls: 1 });
    dir = mkdtempSync(join(tmpdir(), 'seg-grad-cam-3d-'));
  });
  after(() => {
    model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('layers are listed with their 3-D shapes (channels first) and the bottleneck is the smallest grid', () => {
    const layers = vm.layers();
    const byName = Object.fromEntries(layers.map((l) => [l.name, l.shape]));
    assert.deepEqual(byName.enc1, [1, 4, 8, 12, 16]);
    assert.deepEqual(byName.pool2, [1, 8, 2, 3, 4]);
    assert.deepEqual(byName.bottleneck, [1, 8, 2, 3, 4]);
    assert.deepEqual(byName.up1, [1, 4, 8, 12, 16]);
    assert.deepEqual(byName.logits, [1, 3, 8, 12, 16]);
    assert.equal(vm.bottleneck(), 'bottleneck');
    assert.deepEqual(vm.inputDims, [1, 1, 8, 12, 16]);
    assert.equal(vm.activation, 'softmax');
  });

  test('an UpSampling3D model survives a model.json round trip', async () => {
    let saved: tf.io.ModelArtifacts | null = null;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        saved = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const back = await tf.loadLayersModel(tf.io.fromMemory(saved as unknown as tf.io.ModelArtifacts));
    try {
      // (model.predict cannot run it: tfjs-layers' BatchNormalization refuses rank 5; the engine's executor runs it.)
      close(await new LayersVolumeModel(back).predict(input), await vm.predict(input), 'reloaded prediction');
      assert.equal(back.getLayer('up2').getClassName(), 'UpSampling3D');
    } finally {
      back.dispose();
    }
  });

  test('wasm conv3dTranspose (Conv3DBackpropInputV2) equals the cpu kernel: stride 2 valid, stride 1 same', async () => {
    const x = rand(4 * 6 * 8 * 3, 3);
    const cases = [
      { k: [2, 2, 2, 5, 3], out: [1, 8, 12, 16, 5] as Shape5, s: 2, pad: 'valid' as const },
      { k: [3, 3, 3, 5, 3], out: [1, 4, 6, 8, 5] as Shape5, s: 1, pad: 'same' as const },
    ];
    for (const c of cases) {
      const w = rand(
        c.k.reduce((a, b) => a * b, 1),
        4,
      );
      const run = async (b: 'cpu' | 'wasm') => {
        await setupBackend(b);
        const t = tf.tidy(() => tf.conv3dTranspose(tf.tensor5d(x, [1, 4, 6, 8, 3]), tf.tensor5d(w, c.k as Shape5), c.out, c.s, c.pad));
        const v = Float32Array.from(await t.data());
        t.dispose();
        return v;
      };
      const want = await run('cpu');
      close(await run('wasm'), want, `conv3dTranspose stride ${c.s} ${c.pad}`);
    }
    await setupBackend('cpu');
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    test(
      `α, CAM and ∂S/∂A equal PyTorch autograd within 1e-4 at encoder, bottleneck and decoder (${backend})`,
      { skip, timeout: 600_000 },
      async () => {
        const specPath = join(dir, 'spec.json');
        if (!existsSync(join(dir, 'ref.json'))) {
          writeFileSync(specPath, JSON.stringify({ input: Array.from(input), dims: DIMS, weights, questions }));
          const r = spawnSync(PYTHON, [new URL('helpers/torch-unet3d.py', import.meta.url).pathname, specPath], {
            encoding: 'utf8',
            maxBuffer: 1 << 28,
          });
          assert.equal(r.status, 0, r.stderr);
          writeFileSync(join(dir, 'ref.json'), r.stdout);
        }
        const ref = (JSON.parse((await import('node:fs')).readFileSync(join(dir, 'ref.json'), 'utf8')) as { answers: Answer[] }).answers;
        await setupBackend(backend);
        assert.equal(tf.getBackend(), backend);
        const before = tf.memory().numTensors;
        const logits = await vm.predict(input);
        const [, k, d, h, w] = vm.logitsDims;
        const labels = argmaxLabels(logits, k);
        for (const [i, q] of questions.entries()) {
          const want = ref[i];
          const v0 = q.voxels[0];
          const cls = q.cls ?? labels[(v0[0] * h + v0[1]) * w + v0[2]];
          assert.equal(cls, want.cls, 'the predicted class at the voxel is PyTorch’s');
          const cot = new Float32Array(k * d * h * w);
          for (const [a, b, c] of q.voxels) cot[cls * d * h * w + (a * h + b) * w + c] = 1;
          const g = await vm.gradient(input, q.layer, cot);
          assert.deepEqual(g.shape, want.shape);
          const mine = gradCam3d(g.activations, g.gradients, g.shape);
          const what = `${q.layer}, ${q.voxels.length === 1 ? 'voxel' : 'box'}, ${backend}`;
          close(g.gradients, want.gradients, `${what}: ∂S/∂A`);
          close(mine.alpha, want.alpha, `${what}: α`);
          close(mine.camLinear, want.camLinear, `${what}: Σ α A`);
          close(mine.cam, want.cam, `${what}: CAM`);
          let score = 0;
          for (const [a, b, c] of q.voxels) score += g.logits[cls * d * h * w + (a * h + b) * w + c];
          assert.ok(Math.abs(score - want.score) <= 1e-4 * Math.max(1, Math.abs(want.score)), `${what}: S ${score} vs ${want.score}`);
          assert.ok(maxAbs(mine.cam) > 0 || q.layer !== 'bottleneck', `${what}: a CAM that is not all zero`);
        }
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      },
    );
  }
});
