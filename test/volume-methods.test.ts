/**
 * The CAM methods on volume layers (src/volume/methods.ts): on the 3-D U-Net fixture, each map
 * against its definition computed here in float64 from PyTorch's own A and ∂S/∂A
 * (fixtures/volume/reference.bin) — Grad-CAM++, XGrad-CAM and LayerCAM included, the methods that
 * crash in pytorch-grad-cam on 5-D tensors; the layout claim (only sums over positions) as a
 * permutation test; Finer-CAM by linearity; refused methods as typed errors.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { SegGradCamError } from '../src/errors.js';
import { explainVolume } from '../src/volume/explain.js';
import { checkVolumeMethod, finerCotangent, VOLUME_LAYER_METHODS, volumeCam } from '../src/volume/methods.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { VolumeRegion } from '../src/volume/regions.js';
import { relErr, VOLUME_DIR, volumeReference } from './helpers/volume-reference.js';

const DIR = VOLUME_DIR;
const { ref, tensor } = volumeReference('reference');
const relu = (x: number) => Math.max(x, 0);

/** Definitions, float64, on channels-first A and G [C, N]. */
function reference(method: string, A: Float32Array, G: Float32Array, C: number): { cam: Float64Array; weights: Float64Array | null } {
  const N = A.length / C;
  const map = (w: (k: number, u: number) => number) => {
    const cam = new Float64Array(N);
    for (let u = 0; u < N; u++) {
      let s = 0;
      for (let k = 0; k < C; k++) s += w(k, u) * A[k * N + u];
      cam[u] = relu(s);
    }
    return cam;
  };
  const sumA = Array.from({ length: C }, (_, k) => A.subarray(k * N, (k + 1) * N).reduce((s, x) => s + x, 0));
  if (method === 'grad-cam++') {
    const alpha = new Float64Array(C);
    for (let k = 0; k < C; k++)
      for (let u = 0; u < N; u++) {
        const g = G[k * N + u];
        if (g === 0) continue;
        const a = (g * g) / (2 * g * g + sumA[k] * g * g * g + 1e-6);
        alpha[k] += a * relu(g);
      }
    return { cam: map((k) => alpha[k]), weights: alpha };
  }
  if (method === 'xgrad-cam') {
    const alpha = new Float64Array(C);
    for (let k = 0; k < C; k++) for (let u = 0; u < N; u++) alpha[k] += (A[k * N + u] * G[k * N + u]) / (sumA[k] + 1e-7);
    return { cam: map((k) => alpha[k]), weights: alpha };
  }
  if (method === 'layer-cam') return { cam: map((k, u) => relu(G[k * N + u])), weights: null };
  if (method === 'hires-cam') return { cam: map((k, u) => G[k * N + u]), weights: null };
  if (method === 'fem') {
    const w = new Float64Array(C);
    for (let k = 0; k < C; k++) {
      const mean = sumA[k] / N;
      let v = 0;
      for (let u = 0; u < N; u++) v += (A[k * N + u] - mean) ** 2;
      const t = mean + 2 * Math.sqrt(v / N);
      for (let u = 0; u < N; u++) if (A[k * N + u] > t) w[k] += 1 / N;
    }
    return { cam: map((k) => w[k]), weights: w };
  }
  throw new Error(method);
}

const bytes = () => new Uint8Array(readFileSync(new URL('unet3d.onnx', DIR)));

describe('CAM methods on volume layers', () => {
  test('Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM, FEM at three layers: explainVolume against the definitions on PyTorch’s A and ∂S/∂A (≤ 1e-4)', async () => {
    await tf.setBackend('cpu');
    const m = await OnnxVolumeModel.create(bytes(), nodeRuntime);
    try {
      for (const rname of ['voxel', 'box'] as const) {
        const region: VolumeRegion =
          rname === 'voxel' ? { kind: 'voxel', voxel: ref.regions.voxel.voxel } : { kind: 'box', box: ref.regions.box.box };
        for (const l of ref.layers) {
          const A = tensor(`A/${l.role}`);
          const G = tensor(`dSdA/${l.role}/${rname}`);
          for (const method of ['grad-cam++', 'xgrad-cam', 'layer-cam', 'hires-cam', 'fem']) {
            const before = tf.memory().numTensors;
            const e = await explainVolume(m, tensor('input'), { region, classId: ref.class, layer: l.onnx, method });
            assert.equal(tf.memory().numTensors, before, `${method}: tensors leaked`);
            const r = reference(method, A, G, l.shape[1]);
            assert.equal(e.method, method);
            const ec = relErr(e.cam, r.cam);
            assert.ok(ec < 1e-4, `${method} ${l.role} ${rname}: CAM ${ec}`);
            if (r.weights) {
              const ew = relErr(e.weights as Float32Array, r.weights);
              assert.ok(ew < 1e-4, `${method} ${l.role} ${rname}: weights ${ew}`);
            } else assert.equal(e.weights, null);
            // Before the ReLU, for methods with a negative map: ReLU(x) − ReLU(−x) = x.
            if (method !== 'fem') assert.ok(e.camLinear.some((x) => x < 0) || e.camLinear.every((x, i) => x === e.cam[i]));
          }
        }
      }
    } finally {
      await m.dispose();
    }
  });

  test('the positions layout is exact: permuting the d·h·w positions permutes every method’s map', async () => {
    await tf.setBackend('cpu');
    const l = ref.layers[1]; // bottleneck, 120 positions
    const A = tensor(`A/${l.role}`);
    const G = tensor(`dSdA/${l.role}/box`);
    const C = l.shape[1];
    const N = A.length / C;
    // A fixed permutation (multiplication by 7 mod 121 restricted to 0..119 is not one; use a seeded shuffle).
    const perm = Array.from({ length: N }, (_, i) => i);
    let s = 12345;
    for (let i = N - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const permute = (x: Float32Array) => {
      const out = new Float32Array(x.length);
      for (let k = 0; k < x.length / N; k++) for (let u = 0; u < N; u++) out[k * N + u] = x[k * N + perm[u]];
      return out;
    };
    // score-cam, ablation-cam and the input attributions: test/volume-gradient-free.test.ts.
    for (const method of VOLUME_LAYER_METHODS) {
      const a = volumeCam(method, {}, A, G, C);
      const b = volumeCam(method, {}, permute(A), permute(G), C);
      const e = relErr(
        b.cam,
        Float32Array.from({ length: N }, (_, u) => a.cam[perm[u]]),
      );
      assert.ok(e < 1e-5, `${method}: ${e}`);
    }
  });

  test('Eigen-CAM family: the weights are the top principal component of the positions × channels matrix', async () => {
    await tf.setBackend('cpu');
    const l = ref.layers[2];
    const A = tensor(`A/${l.role}`);
    const G = tensor(`dSdA/${l.role}/box`);
    const C = l.shape[1];
    const N = A.length / C;
    const feature: Record<string, (k: number, u: number) => number> = {
      'eigen-cam': (k, u) => A[k * N + u],
      'seg-eigen-cam': (k, u) => Math.abs(G[k * N + u]) * A[k * N + u],
      'eigen-grad-cam': (k, u) => G[k * N + u] * A[k * N + u],
    };
    for (const [method, X] of Object.entries(feature)) {
      const r = volumeCam(method, {}, A, G, C);
      const v = r.weights as Float32Array;
      // Centred covariance, float64.
      const mean = Array.from({ length: C }, (_, k) => {
        let t = 0;
        for (let u = 0; u < N; u++) t += X(k, u);
        return t / N;
      });
      const cov = Array.from({ length: C }, (_, i) =>
        Array.from({ length: C }, (_, j) => {
          let t = 0;
          for (let u = 0; u < N; u++) t += (X(i, u) - mean[i]) * (X(j, u) - mean[j]);
          return t;
        }),
      );
      const Cv = cov.map((row) => row.reduce((t, c, j) => t + c * v[j], 0));
      const lambda = Cv.reduce((t, x, i) => t + x * v[i], 0);
      // An eigenvector: C v = λ v; the largest eigenvalue: λ ≥ every Rayleigh quotient of the unit vectors e_i (the diagonal).
      assert.ok(Math.max(...Cv.map((x, i) => Math.abs(x - lambda * v[i]))) < 1e-4 * lambda, `${method}: not an eigenvector`);
      assert.ok(
        cov.every((row, i) => row[i] <= lambda * (1 + 1e-6)),
        `${method}: not the top component`,
      );
      // The map: ReLU of the centred projection (up to the sign rule).
      const proj = Float64Array.from({ length: N }, (_, u) => mean.reduce((t, m, k) => t + (X(k, u) - m) * v[k], 0));
      const e = relErr(r.cam, proj.map(relu));
      assert.ok(e < 1e-4, `${method}: map ${e}`);
    }
  });

  test('Finer-CAM with one comparison class: α = α(S = Σ_M y^c) − α(S = Σ_M y^j) (linearity)', async () => {
    await tf.setBackend('cpu');
    const m = await OnnxVolumeModel.create(bytes(), nodeRuntime);
    try {
      const region: VolumeRegion = { kind: 'box', box: ref.regions.box.box };
      const layer = ref.layers[1].onnx;
      const x = tensor('input');
      const f = await explainVolume(m, x, { region, classId: 0, layer, method: 'finer-cam', methodOptions: { comparisons: 1 } });
      const { compared } = finerCotangent(f.logits, 3, f.mask, 0, 1, 1);
      assert.equal(compared.length, 1);
      const a = await explainVolume(m, x, { region, classId: 0, layer });
      const b = await explainVolume(m, x, { region, classId: compared[0], layer });
      const diff = Float64Array.from(a.alpha, (v, k) => v - b.alpha[k]);
      assert.ok(relErr(f.alpha, diff) < 1e-4, `α ${relErr(f.alpha, diff)}`);
      assert.ok(Math.abs(f.score - (a.score - b.score)) < 1e-4 * Math.abs(a.score - b.score), `S ${f.score}`);
    } finally {
      await m.dispose();
    }
  });

  test('methods that do not extend to volumes are refused with a typed error', () => {
    for (const name of ['rise', 'grid-saliency', 'cam', 'lrp', 'occlusion', 'no-such-method'])
      assert.throws(
        () => checkVolumeMethod(name),
        (e: unknown) => e instanceof SegGradCamError && e.code === 'usage' && e.message.includes(name),
      );
  });
});
