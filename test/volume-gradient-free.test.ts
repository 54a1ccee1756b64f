/**
 * Score-CAM and Ablation-CAM on volumes against their definitions computed in PyTorch (float64) on
 * the same 3-D U-Net (scripts/volume/gradient-free-references.py, fixtures/volume/gradient-free.*):
 * one patch (a box at the bottleneck, a voxel at a decoder layer) and sliding windows (a box
 * reached by 4 of 8 patches: masks blended over the touched patches, S over the blended logits).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { SegGradCamError } from '../src/errors.js';
import { camOnVolume, explainVolume } from '../src/volume/explain.js';
import { explainVolumeGrid } from '../src/volume/explain-grid.js';
import { trilinear } from '../src/volume/gradient-free.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { Dims3 } from '../src/volume/regions.js';
import { relErr, volumeReference, VOLUME_DIR } from './helpers/volume-reference.js';

interface GfRef {
  sliding: { volume: Dims3; box: number[]; class: number };
  regions: { box: number[]; voxel: Dims3 };
  layers: Record<string, string>;
  cases: Array<{ name: string; layer: string; class: number; touched: Dims3[] }>;
  tensors: Record<string, { offset: number; shape: number[] }>;
}
const ref = JSON.parse(readFileSync(new URL('gradient-free.json', VOLUME_DIR), 'utf8')) as GfRef;
const bin = readFileSync(new URL('gradient-free.bin', VOLUME_DIR));
const tensor = (key: string): Float32Array => {
  const t = ref.tensors[key];
  assert.ok(t, key);
  const n = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + 4 * n));
};
const PATCH: Dims3 = [16, 20, 24];
const box6 = (b: number[]) => b as [number, number, number, number, number, number];

let model: OnnxVolumeModel;
const input = volumeReference('reference').tensor('input');
before(async () => {
  model = await OnnxVolumeModel.create(new Uint8Array(readFileSync(new URL('unet3d.onnx', VOLUME_DIR))), nodeRuntime);
});
after(async () => {
  await model.dispose();
});

describe('Score-CAM and Ablation-CAM on one patch = PyTorch', () => {
  const cases = [
    { key: 'patch-box', layer: 'bottleneck', region: { kind: 'box' as const, box: box6(ref.regions.box) } },
    { key: 'patch-voxel-decoder', layer: 'decoder', region: { kind: 'voxel' as const, voxel: ref.regions.voxel } },
  ];
  for (const { key, layer, region } of cases) {
    const methods: Array<[string, string, Record<string, unknown>]> = [
      ['score-cam', 'score-cam', {}],
      ['ablation-cam', 'ablation-cam', {}],
    ];
    if (key === 'patch-box') methods.push(['score-cam-torch', 'score-cam', { variant: 'pytorch-grad-cam' }]);
    for (const [refName, method, methodOptions] of methods)
      test(`${refName}, ${region.kind} at the ${layer}`, async () => {
        const e = await explainVolume(model, input, { region, classId: 0, layer: ref.layers[layer], method, methodOptions });
        const alpha = tensor(`${key}/${refName}/alpha`);
        assert.ok(relErr(e.alpha, alpha) <= 1e-4, `α: ${relErr(e.alpha, alpha)}`);
        const cam = tensor(`${key}/${refName}/cam`);
        const mine = camOnVolume(e.cam, e.camDims, PATCH);
        assert.ok(relErr(mine, cam) <= 1e-4, `CAM: ${relErr(mine, cam)}`);
        assert.equal(e.weights, e.alpha);
      });
  }
});

describe('Score-CAM and Ablation-CAM across sliding-window patches = PyTorch', () => {
  const vol = tensor('sliding/volume');
  for (const method of ['score-cam', 'ablation-cam'])
    test(`${method}: a box reached by 4 of 8 patches, one weight per channel over them`, async () => {
      const e = await explainVolumeGrid(model, vol, ref.sliding.volume, {
        region: { kind: 'box', box: box6(ref.sliding.box) },
        classId: ref.sliding.class,
        layer: ref.layers.bottleneck,
        method,
      });
      assert.equal(e.sliding, true);
      assert.deepEqual(e.patches, { total: 8, touched: 4, skipped: 4, predicted: 0 });
      const alpha = tensor(`sliding-box/${method}/alpha`);
      assert.ok(relErr(e.alpha, alpha) <= 1e-4, `α: ${relErr(e.alpha, alpha)}`);
      const cam = tensor(`sliding-box/${method}/cam`);
      assert.ok(relErr(e.cam, cam) <= 1e-4, `CAM: ${relErr(e.cam, cam)}`);
    });
});

describe('input attributions (saliency, gradient × input) = PyTorch autograd through the (blended) S', () => {
  const vol = tensor('sliding/volume');
  const cases = [
    { key: 'patch-box', x: input, dims: PATCH, box: box6(ref.regions.box), classId: 0 },
    { key: 'sliding-box', x: vol, dims: ref.sliding.volume, box: box6(ref.sliding.box), classId: ref.sliding.class },
  ];
  for (const { key, x, dims, box, classId } of cases)
    for (const [method, refKey, negative] of [
      ['saliency', 'saliency/cam', false],
      ['gradient-x-input', 'gradient-x-input/cam', false],
      ['gradient-x-input', 'gradient-x-input/camNegative', true],
    ] as const)
      test(`${key}: ${refKey}`, async () => {
        const e = await explainVolumeGrid(model, x, dims, { region: { kind: 'box', box }, classId, method, methodOptions: { negative } });
        assert.equal(e.layer, 'input');
        assert.deepEqual(e.camDims, dims);
        const want = tensor(`${key}/${refKey}`);
        assert.ok(relErr(e.cam, want) <= 1e-4, `${relErr(e.cam, want)}`);
      });
});

test('trilinear upsampling: hand values (half-pixel centres and aligned corners)', () => {
  // [2] → [4] along w: half-pixel sources −0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
  assert.deepEqual(Array.from(trilinear([0, 4], [1, 1, 2], [1, 1, 4])), [0, 1, 3, 4]);
  // Aligned corners: sources 0, 1/3, 2/3, 1.
  const ac = trilinear([0, 3], [1, 1, 2], [1, 1, 4], true);
  [0, 1, 2, 3].forEach((v, i) => assert.ok(Math.abs(ac[i] - v) < 1e-12));
  // A 2×2×2 cube to 4×4×4: the corner cell keeps the corner value, the centre is the mean of the 8.
  const cube = [0, 1, 2, 3, 4, 5, 6, 7];
  const up = trilinear(cube, [2, 2, 2], [4, 4, 4]);
  assert.equal(up[0], 0);
  assert.equal(up[63], 7);
  // (1, 1, 1): source 0.25 on every axis; the cube is linear (4d + 2h + w): 4·0.25 + 2·0.25 + 0.25 = 1.75.
  assert.ok(Math.abs(up[(1 * 4 + 1) * 4 + 1] - 1.75) < 1e-12);
  // (2, 1, 3): sources 0.75, 0.25, 1 (clamped): 3 + 0.5 + 1 = 4.5.
  assert.ok(Math.abs(up[(2 * 4 + 1) * 4 + 3] - 4.5) < 1e-12);
});

test('score-cam refuses the blurred baseline on volumes (typed)', async () => {
  await assert.rejects(
    explainVolume(model, input, {
      region: { kind: 'voxel', voxel: [6, 10, 8] },
      classId: 0,
      method: 'score-cam',
      methodOptions: { baseline: 'blurred' },
    }),
    SegGradCamError,
  );
});
