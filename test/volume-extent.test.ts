/**
 * A region explanation with sliding windows does its per-explanation work on the touched patches'
 * extent only (M's entries of the cotangent, the blend on the touched patches' bounding box). These
 * tests compare that path with straightforward whole-volume computations written here from the
 * definitions (docs/volumes.md, "Volumes larger than the patch"): dense cotangents over the whole
 * blended logits, W summed over every patch, the CAM blended with num/den arrays over every voxel.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { SegGradCamError } from '../src/errors.js';
import { blendPatchMaps } from '../src/volume/blend-cam.js';
import { explainSlidingWindow } from '../src/volume/explain-sliding.js';
import { explainVolumeGrid } from '../src/volume/explain-grid.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { Dims3 } from '../src/volume/regions.js';
import { cropPatch, slidingWindowGradient, sparseCotangent } from '../src/volume/sliding-window.js';

const DIMS: Dims3 = [20, 28, 30]; // the fixture's patch is 16 × 20 × 24: starts d 0, 4; h 0, 8; w 0, 6 (8 patches)
const PATCH: Dims3 = [16, 20, 24];
const N = DIMS[0] * DIMS[1] * DIMS[2];
const M = PATCH[0] * PATCH[1] * PATCH[2];
const K = 3;
const STARTS: Dims3[] = [];
for (const d of [0, 4]) for (const h of [0, 8]) for (const w of [0, 6]) STARTS.push([d, h, w]);
const volume = Float32Array.from({ length: N }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.37) * Math.cos(i * 0.011));

/** The Gaussian importance map from its definition (σ = patch/8, centre (n − 1)/2, peak 1), as float32 like the library's. */
function importance(): Float32Array {
  const g = (i: number, n: number) => Math.exp(-((i - (n - 1) / 2) ** 2) / (2 * (n / 8) ** 2));
  const out = new Float32Array(M);
  for (let d = 0; d < PATCH[0]; d++)
    for (let h = 0; h < PATCH[1]; h++)
      for (let w = 0; w < PATCH[2]; w++) out[(d * PATCH[1] + h) * PATCH[2] + w] = g(d, PATCH[0]) * g(h, PATCH[1]) * g(w, PATCH[2]);
  return out;
}
const W8 = importance();

/** The whole-volume blend: num and den over every voxel of the volume, then ReLU(num/den) where den > 0. */
function wholeVolumeBlend(maps: ArrayLike<number>[], starts: Dims3[], layer: Dims3): Float32Array {
  const num = new Float64Array(N);
  const den = new Float64Array(N);
  const f = [0, 1, 2].map((a) => PATCH[a] / layer[a]);
  starts.forEach((s, i) => {
    for (let d = 0; d < PATCH[0]; d++)
      for (let h = 0; h < PATCH[1]; h++)
        for (let w = 0; w < PATCH[2]; w++) {
          const cell = (Math.floor(d / f[0]) * layer[1] + Math.floor(h / f[1])) * layer[2] + Math.floor(w / f[2]);
          const v = ((s[0] + d) * DIMS[1] + s[1] + h) * DIMS[2] + s[2] + w;
          const q = (d * PATCH[1] + h) * PATCH[2] + w;
          num[v] += W8[q] * maps[i][cell];
          den[v] += W8[q];
        }
  });
  const cam = new Float32Array(N);
  for (let v = 0; v < N; v++) if (den[v] > 0) cam[v] = Math.max(num[v] / den[v], 0);
  return cam;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) {
      bad++;
      if (first < 0) first = i;
    }
  assert.equal(bad, 0, `${what}: ${bad} voxels differ, the first at ${first}: ${a[first]} vs ${b[first]}`);
}

describe('the blend on the touched patches’ extent', () => {
  test('bit-identical to a whole-volume blend for one patch, a corner group, a strip and all eight patches', () => {
    let seed = 3;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const cases: Array<[string, number[], Dims3]> = [
      ['one corner patch', [0], [4, 5, 6]],
      ['one far patch', [7], [4, 5, 6]],
      ['four patches at d = 0', [0, 1, 2, 3], [4, 5, 6]],
      ['two patches along w, a finer grid', [5, 7], [8, 10, 12]],
      ['all eight, the voxel grid', [0, 1, 2, 3, 4, 5, 6, 7], [16, 20, 24]],
    ];
    for (const [what, which, layer] of cases) {
      const starts = which.map((i) => STARTS[i]);
      const maps = starts.map(() => Float64Array.from({ length: layer[0] * layer[1] * layer[2] }, rand));
      const mine = blendPatchMaps(maps, starts, layer, PATCH, W8, DIMS);
      const ref = wholeVolumeBlend(maps, starts, layer);
      sameBits(mine.cam, ref, what);
      assert.ok(
        ref.some((v) => v > 0),
        `${what}: the reference has positive voxels`,
      );
      // the extent: the touched patches' bounding box, with the reference 0 outside it
      const lo = [0, 1, 2].map((a) => Math.min(...starts.map((s) => s[a])));
      const hi = [0, 1, 2].map((a) => Math.max(...starts.map((s) => s[a] + PATCH[a])));
      assert.deepEqual(mine.extent, { start: lo, size: [0, 1, 2].map((a) => hi[a] - lo[a]) });
    }
  });
});

describe('a region explained with M’s entries only, against dense whole-volume cotangents', () => {
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

  /**
   * The explanation from the definitions, over the whole volume: the dense cotangent of M × class c,
   * W = Σ_p w over every patch at every voxel, each patch touching M run with cot·w/W, one α = the
   * mean of the per-patch α_p, each patch's Σ α_k A_p^k blended over the whole volume, ReLU.
   */
  async function reference(box: number[], c: number, layer: string) {
    const cot = new Float32Array(K * N);
    for (let d = box[0]; d <= box[3]; d++)
      for (let h = box[1]; h <= box[4]; h++) for (let w = box[2]; w <= box[5]; w++) cot[c * N + (d * DIMS[1] + h) * DIMS[2] + w] = 1;
    const total = new Float64Array(N);
    for (const s of STARTS)
      for (let d = 0; d < PATCH[0]; d++)
        for (let h = 0; h < PATCH[1]; h++)
          for (let w = 0; w < PATCH[2]; w++)
            total[((s[0] + d) * DIMS[1] + s[1] + h) * DIMS[2] + s[2] + w] += W8[(d * PATCH[1] + h) * PATCH[2] + w];
    const touched: Dims3[] = [];
    const runs = [];
    let score = 0;
    for (const s of STARTS) {
      const pc = new Float32Array(K * M);
      let any = false;
      for (let k = 0; k < K; k++)
        for (let d = 0; d < PATCH[0]; d++)
          for (let h = 0; h < PATCH[1]; h++)
            for (let w = 0; w < PATCH[2]; w++) {
              const v = ((s[0] + d) * DIMS[1] + s[1] + h) * DIMS[2] + s[2] + w;
              const u = (d * PATCH[1] + h) * PATCH[2] + w;
              if (cot[k * N + v] === 0) continue;
              pc[k * M + u] = (cot[k * N + v] * W8[u]) / total[v];
              any = true;
            }
      if (!any) continue;
      const g = await model.gradient(cropPatch(volume, 1, DIMS, s, PATCH), layer, pc);
      for (let i = 0; i < pc.length; i++) score += pc[i] * g.logits[i];
      touched.push(s);
      runs.push(g);
    }
    const [, ch, ld, lh, lw] = runs[0].shape;
    const n = ld * lh * lw;
    const alphaP = runs.map((g) =>
      Float32Array.from({ length: ch }, (_, k) => {
        let t = 0;
        for (let u = 0; u < n; u++) t += g.gradients[k * n + u];
        return t / n;
      }),
    );
    const alpha = Float32Array.from({ length: ch }, (_, k) => alphaP.reduce((t, a) => t + a[k], 0) / alphaP.length);
    const maps = runs.map((g) => {
      const lin = new Float64Array(n);
      for (let k = 0; k < ch; k++) for (let u = 0; u < n; u++) lin[u] += alpha[k] * g.activations[k * n + u];
      return lin;
    });
    return { cam: wholeVolumeBlend(maps, touched, [ld, lh, lw]), touched, alpha, score, cot };
  }

  const cases: Array<[string, number[], number, string]> = [
    ['a box near the far corner of the first patch, in all eight', [13, 17, 21, 15, 19, 23], 1, '/bottleneck/act/LeakyRelu_output_0'],
    [
      'a box at d = 1..2 near h, w corners: four patches, extent short of the volume along d',
      [1, 17, 21, 2, 19, 23],
      2,
      '/dec2/act/Relu_output_0',
    ],
    [
      'a box at w = 25..27: the four patches at w = 6, the extent starting there',
      [8, 10, 25, 9, 12, 27],
      1,
      '/dec1/act/LeakyRelu_output_0',
    ],
    ['the voxel where the last patch starts: all eight', [4, 8, 6, 4, 8, 6], 2, '/bottleneck/act/LeakyRelu_output_0'],
    ['a box inside the first patch only', [1, 2, 1, 3, 6, 4], 1, '/bottleneck/act/LeakyRelu_output_0'],
    ['a voxel in the last patch only', [19, 27, 29, 19, 27, 29], 0, '/dec1/act/LeakyRelu_output_0'],
  ];
  for (const [what, box, c, layer] of cases)
    test(what, async () => {
      const ref = await reference(box, c, layer);
      const region = { kind: 'box' as const, box: box as [number, number, number, number, number, number] };
      const e = await explainVolumeGrid(model, volume, DIMS, { region, classId: c, layer });
      assert.equal(e.patches.touched, ref.touched.length);
      assert.equal(e.patches.skipped, 8 - ref.touched.length);
      sameBits(e.alpha, ref.alpha, `${what}: α`);
      assert.equal(e.score, ref.score, `${what}: S`);
      sameBits(e.cam, ref.cam, `${what}: CAM`);
      assert.ok(
        e.cam.some((v) => v > 0),
        `${what}: a non-zero CAM`,
      );
      // the dense-cotangent entry point gives the same
      const dense = await explainSlidingWindow(model, volume, DIMS, layer, ref.cot);
      sameBits(dense.cam, ref.cam, `${what}: CAM from the dense cotangent`);
    });

  test('a sparse cotangent equals its dense form; a bad one is refused', async () => {
    const cot = new Float32Array(K * N);
    cot[N + (2 * DIMS[1] + 9) * DIMS[2] + 7] = 1;
    cot[N + (2 * DIMS[1] + 9) * DIMS[2] + 8] = 0.5;
    const sparse = sparseCotangent(cot);
    assert.deepEqual(Array.from(sparse.index), [N + (2 * DIMS[1] + 9) * DIMS[2] + 7, N + (2 * DIMS[1] + 9) * DIMS[2] + 8]);
    assert.deepEqual(Array.from(sparse.value), [1, 0.5]);
    const a = await slidingWindowGradient(model, volume, DIMS, 'input', cot);
    const b = await slidingWindowGradient(model, volume, DIMS, 'input', sparse);
    assert.deepEqual(
      b.patches.map((p) => p.start),
      a.patches.map((p) => p.start),
    );
    a.patches.forEach((p, i) => sameBits(b.patches[i].cotangent as Float32Array, p.cotangent as Float32Array, 'patch cotangent'));
    await assert.rejects(
      slidingWindowGradient(model, volume, DIMS, 'input', { index: Int32Array.of(5, 3), value: Float32Array.of(1, 1) }),
      SegGradCamError,
    );
    await assert.rejects(
      slidingWindowGradient(model, volume, DIMS, 'input', { index: Int32Array.of(K * N), value: Float32Array.of(1) }),
      SegGradCamError,
    );
  });
});
