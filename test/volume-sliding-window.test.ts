/**
 * Sliding-window inference on a volume larger than the 3-D U-Net's patch: the blended prediction
 * against Gaussian-weighted blending written here from its definition, and ∂S/∂x through the
 * blending against central finite differences of the blended S.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { SegGradCamError } from '../src/errors.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { Dims3 } from '../src/volume/regions.js';
import { explainSlidingWindow } from '../src/volume/explain-sliding.js';
import { explainVolumeGrid } from '../src/volume/explain-grid.js';
import { gradCam3d } from '../src/volume/explain.js';
import {
  assembleInputGradient,
  cropPatch,
  predictSlidingWindow,
  slidingWindowGradient,
  windowStarts,
} from '../src/volume/sliding-window.js';

const DIMS: Dims3 = [20, 28, 30]; // the patch is 16 × 20 × 24
const N = DIMS[0] * DIMS[1] * DIMS[2];
const volume = Float32Array.from({ length: N }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37) * Math.cos(i * 0.011));
let model: OnnxVolumeModel;

before(async () => {
  model = await OnnxVolumeModel.create(
    new Uint8Array(readFileSync(new URL('../fixtures/volume/unet3d.onnx', import.meta.url))),
    nodeRuntime,
  );
});
after(async () => {
  await model.dispose();
});

test('window starts (nnU-Net: n = ceil((size − patch) / (patch · step)) + 1, evenly spread, rounded)', () => {
  assert.deepEqual(windowStarts(20, 16), [0, 4]);
  assert.deepEqual(windowStarts(64, 32), [0, 16, 32]);
  assert.deepEqual(windowStarts(16, 16), [0]);
  assert.deepEqual(windowStarts(100, 32), [0, 14, 27, 41, 54, 68]); // n = 6, step 13.6
  assert.deepEqual(windowStarts(100, 32, 0.75), [0, 8, 15, 23, 30, 38, 45, 53, 60, 68]); // n = ceil(68 / 8) + 1 = 10, step 68/9
  assert.throws(() => windowStarts(10, 16), SegGradCamError);
  assert.throws(() => windowStarts(20, 16, 1), SegGradCamError);
});

describe('sliding window on the 3-D U-Net', () => {
  test('blended logits = Σ_p w·y_p / Σ_p w, with w the centred Gaussian of σ = patch/8', async () => {
    const { logits, starts } = await predictSlidingWindow(model, volume, DIMS);
    const P: Dims3 = [16, 20, 24];
    const expectedStarts: Dims3[] = [];
    for (const d of [0, 4]) for (const h of [0, 8]) for (const w of [0, 6]) expectedStarts.push([d, h, w]);
    assert.deepEqual(starts, expectedStarts);
    const K = 3;
    const num = new Float64Array(K * N);
    const den = new Float64Array(N);
    const g = (i: number, n: number) => Math.exp(-((i - (n - 1) / 2) ** 2) / (2 * (n / 8) ** 2));
    for (const [sd, sh, sw] of expectedStarts) {
      const crop = new Float32Array(P[0] * P[1] * P[2]);
      for (let d = 0; d < P[0]; d++)
        for (let h = 0; h < P[1]; h++)
          for (let w = 0; w < P[2]; w++) crop[(d * P[1] + h) * P[2] + w] = volume[((sd + d) * DIMS[1] + sh + h) * DIMS[2] + sw + w];
      const y = await model.predict(crop);
      for (let d = 0; d < P[0]; d++)
        for (let h = 0; h < P[1]; h++)
          for (let w = 0; w < P[2]; w++) {
            const weight = g(d, P[0]) * g(h, P[1]) * g(w, P[2]);
            const v = ((sd + d) * DIMS[1] + sh + h) * DIMS[2] + sw + w;
            den[v] += weight;
            for (let k = 0; k < K; k++) num[k * N + v] += weight * y[(k * P[0] + d) * P[1] * P[2] + h * P[2] + w];
          }
    }
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < K * N; i++) {
      const r = num[i] / den[i % N];
      diff = Math.max(diff, Math.abs(logits[i] - r));
      scale = Math.max(scale, Math.abs(r));
    }
    assert.ok(diff <= 1e-6 * scale, `max difference ${diff} (scale ${scale})`);
  });

  test('∂S/∂x through the blending equals finite differences; patches off M get no backward run', async () => {
    const K = 3;
    const c = 1;
    // M: a 3×3×3 box where all eight patches overlap
    const cot = new Float32Array(K * N);
    for (let d = 7; d < 10; d++)
      for (let h = 11; h < 14; h++) for (let w = 10; w < 13; w++) cot[c * N + (d * DIMS[1] + h) * DIMS[2] + w] = 1;
    const r = await slidingWindowGradient(model, volume, DIMS, 'input', cot);
    assert.equal(r.patches.length, 8);
    assert.equal(r.skipped, 0);
    const grad = assembleInputGradient(r.patches, 1, DIMS);
    const S = async (x: Float32Array) => {
      const { logits } = await predictSlidingWindow(model, x, DIMS);
      let s = 0;
      for (let i = 0; i < cot.length; i++) s += cot[i] * logits[i];
      return s;
    };
    // the voxels of largest |∂S/∂x|, and a few spread over the overlaps
    const order = Array.from(grad.keys()).sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]));
    const picked = [...order.slice(0, 4), ((8 * DIMS[1] + 12) * DIMS[2] + 5) | 0, ((4 * DIMS[1] + 20) * DIMS[2] + 20) | 0];
    const scale = Math.abs(grad[order[0]]);
    // ε = 1e-2 steps across a ReLU/max-pool switch at the largest-gradient voxel (5 % off there); at 1e-3 the
    // worst voxel is 1.1 % off, stable down to ε = 3e-4 (near-ties in the eight patches' max-pools), the others < 0.5 %.
    const eps = 1e-3;
    for (const i of picked) {
      const plus = Float32Array.from(volume);
      const minus = Float32Array.from(volume);
      plus[i] += eps;
      minus[i] -= eps;
      const fd = ((await S(plus)) - (await S(minus))) / (2 * eps);
      assert.ok(Math.abs(fd - grad[i]) <= 2e-2 * scale, `voxel ${i}: gradient ${grad[i]}, finite differences ${fd} (scale ${scale})`);
    }
    // a voxel in the corner patch only: one backward run, seven skipped
    const corner = new Float32Array(K * N);
    corner[c * N + 0] = 1;
    const one = await slidingWindowGradient(model, volume, DIMS, 'input', corner);
    assert.deepEqual(
      one.patches.map((p) => p.start),
      [[0, 0, 0]],
    );
    assert.equal(one.skipped, 7);
  });
});

describe('α across patches: one α, the mean of ∂S/∂A over every cell of every patch touching M', () => {
  test('M in one patch: the single-patch explanation; M in the overlap: the mean of the per-patch α', async () => {
    const layer = '/bottleneck/act/LeakyRelu_output_0';
    const K = 3;
    const c = 1;
    const P: Dims3 = [16, 20, 24];
    const m = P[0] * P[1] * P[2];
    // M = voxel (0, 0, 0): only the patch at (0, 0, 0) reaches it, and it is the only patch with weight there
    const corner = new Float32Array(K * N);
    corner[c * N] = 1;
    const one = await explainSlidingWindow(model, volume, DIMS, layer, corner);
    assert.equal(one.patches.length, 1);
    const patchCot = new Float32Array(K * m);
    patchCot[c * m] = 1; // the blending weight there is w/w = 1
    const g = await model.gradient(cropPatch(volume, 1, DIMS, [0, 0, 0], P), layer, patchCot);
    const single = gradCam3d(g.activations, g.gradients, g.shape);
    for (let k = 0; k < single.alpha.length; k++)
      assert.ok(Math.abs(one.alpha[k] - single.alpha[k]) <= 1e-6 * Math.max(...single.alpha.map(Math.abs)));
    // M in the middle: eight patches, α = the mean of their α_p (not their sum, not a per-patch α)
    const mid = new Float32Array(K * N);
    mid[c * N + (9 * DIMS[1] + 13) * DIMS[2] + 14] = 1;
    const all = await explainSlidingWindow(model, volume, DIMS, layer, mid);
    assert.equal(all.patches.length, 8);
    for (let k = 0; k < all.alpha.length; k++) {
      const mean = all.patches.reduce((s, p) => s + p.alpha[k], 0) / 8;
      assert.ok(Math.abs(all.alpha[k] - mean) <= 1e-6 * Math.max(1e-12, ...all.alpha.map(Math.abs)));
    }
    // the per-patch α_p differ (so the choice matters)
    assert.ok(all.patches.some((p) => Math.abs(p.alpha[0] - all.patches[0].alpha[0]) > 1e-9));
    assert.equal(all.cam.length, N);
    assert.ok(all.cam.every((v) => v >= 0 && Number.isFinite(v)));
  });
});

describe('the class of a region from the patches that cover it', () => {
  test('a box without a class: only the patches covering it are predicted, and the class is the full prediction’s', async () => {
    const box: [number, number, number, number, number, number] = [1, 2, 1, 3, 6, 4]; // inside the patch at (0, 0, 0) only
    const e = await explainVolumeGrid(model, volume, DIMS, { region: { kind: 'box', box } });
    assert.deepEqual(e.patches, { total: 8, touched: 1, skipped: 7, predicted: 1 });
    // The class from the whole blended prediction (every patch), written here: argmax over k of Σ_M Y_k.
    const { logits } = await predictSlidingWindow(model, volume, DIMS);
    const sums = [0, 1, 2].map((k) => {
      let s = 0;
      for (let d = box[0]; d <= box[3]; d++)
        for (let h = box[1]; h <= box[4]; h++) for (let w = box[2]; w <= box[5]; w++) s += logits[k * N + (d * DIMS[1] + h) * DIMS[2] + w];
      return s;
    });
    const best = sums.indexOf(Math.max(...sums));
    assert.equal(e.classId, best);
    assert.ok(Math.abs(e.score - sums[best]) <= 1e-4 * Math.abs(sums[best]), `S ${e.score} vs ${sums[best]}`);
    // A box in the overlap of two patches along w: both are predicted.
    const e2 = await explainVolumeGrid(model, volume, DIMS, { region: { kind: 'box', box: [1, 2, 10, 2, 3, 12] } });
    assert.equal(e2.patches.predicted, 2);
  });
});
