/** 3-D regions and connected components on hand cases. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import { connectedComponent3d, labelComponents3d, toOutputVoxel, volumeRegionMask, type Dims3 } from '../src/volume/regions.js';

const D4: Dims3 = [4, 4, 4];
const ctx = { inputDims: D4, outputDims: D4 };
const ones = (m: ArrayLike<number>) => Array.from(m).flatMap((v, i) => (v ? [i] : []));
const at = (d: number, h: number, w: number, dims: Dims3 = D4) => (d * dims[1] + h) * dims[2] + w;

test('voxel, voxel list, whole', () => {
  assert.deepEqual(ones(volumeRegionMask({ kind: 'voxel', voxel: [1, 2, 3] }, ctx)), [at(1, 2, 3)]);
  assert.deepEqual(
    ones(
      volumeRegionMask(
        {
          kind: 'voxels',
          voxels: [
            [0, 0, 0],
            [3, 3, 3],
            [0, 0, 0],
          ],
        },
        ctx,
      ),
    ),
    [0, 63],
  );
  assert.equal(ones(volumeRegionMask({ kind: 'whole' }, ctx)).length, 64);
  assert.throws(() => volumeRegionMask({ kind: 'voxel', voxel: [0, 4, 0] }, ctx), SegGradCamError);
  assert.throws(() => volumeRegionMask({ kind: 'voxel', voxel: [0, 1.5, 0] }, ctx), SegGradCamError);
  assert.throws(() => volumeRegionMask({ kind: 'voxels', voxels: [] }, ctx), SegGradCamError);
});

test('an input voxel maps to the output cell holding its centre', () => {
  // 8 → 4 per axis: cell = floor((v + 0.5) / 2)
  assert.deepEqual(toOutputVoxel([5, 2, 7], [8, 8, 8], D4), [2, 1, 3]);
  // 8 × 6 × 4 → 4 × 3 × 2
  assert.deepEqual(toOutputVoxel([7, 5, 3], [8, 6, 4], [4, 3, 2]), [3, 2, 1]);
});

test('box: 6 numbers, corners included', () => {
  const m = volumeRegionMask({ kind: 'box', box: [1, 0, 2, 2, 1, 3] }, ctx);
  assert.deepEqual(ones(m), [at(1, 0, 2), at(1, 0, 3), at(1, 1, 2), at(1, 1, 3), at(2, 0, 2), at(2, 0, 3), at(2, 1, 2), at(2, 1, 3)]);
  assert.throws(() => volumeRegionMask({ kind: 'box', box: [2, 0, 0, 1, 1, 1] }, ctx), /past the second/);
  assert.throws(() => volumeRegionMask({ kind: 'box', box: [0, 0, 0, 1, 1, 4] }, ctx), SegGradCamError);
  // on a half-resolution grid: input box [2..5]^3 of 8^3 covers output cells 1..2 per axis
  assert.equal(ones(volumeRegionMask({ kind: 'box', box: [2, 2, 2, 5, 5, 5] }, { inputDims: [8, 8, 8], outputDims: D4 })).length, 8);
});

test('mask volume and class', () => {
  const mask = new Uint8Array(64);
  mask[at(3, 0, 1)] = 7;
  assert.deepEqual(ones(volumeRegionMask({ kind: 'mask', mask }, ctx)), [at(3, 0, 1)]);
  assert.throws(() => volumeRegionMask({ kind: 'mask', mask: new Uint8Array(63) }, ctx), SegGradCamError);
  assert.throws(() => volumeRegionMask({ kind: 'mask', mask: new Uint8Array(64) }, ctx), /empty/);
  const labels = new Int32Array(64);
  labels[5] = 2;
  labels[60] = 2;
  labels[7] = 1;
  assert.deepEqual(ones(volumeRegionMask({ kind: 'class' }, { ...ctx, labels, classIndex: 2 })), [5, 60]);
  assert.throws(() => volumeRegionMask({ kind: 'class' }, ctx), SegGradCamError);
});

test('connected components: 6 (faces) against 26 (faces, edges, corners)', () => {
  const dims: Dims3 = [3, 3, 3];
  const labels = new Int32Array(27);
  // a face pair, then an edge neighbour and a corner neighbour of it
  labels[at(0, 0, 0, dims)] = 1;
  labels[at(0, 0, 1, dims)] = 1; // shares a face with (0,0,0)
  labels[at(0, 1, 2, dims)] = 1; // shares an edge with (0,0,1)
  labels[at(1, 2, 1, dims)] = 1; // shares a corner with (0,1,2)
  labels[at(2, 2, 2, dims)] = 1; // shares an edge with (1,2,1) (d + 1, w + 1)
  const six = connectedComponent3d(labels, dims, [0, 0, 0], 6);
  assert.deepEqual(ones(six), [at(0, 0, 0, dims), at(0, 0, 1, dims)]);
  const all = connectedComponent3d(labels, dims, [0, 0, 0], 26);
  assert.deepEqual(ones(all), [at(0, 0, 0, dims), at(0, 0, 1, dims), at(0, 1, 2, dims), at(1, 2, 1, dims), at(2, 2, 2, dims)]);
  // the background around them is one 6-connected component of label 0
  assert.equal(ones(connectedComponent3d(labels, dims, [2, 0, 0], 6)).length, 27 - 5);
  const six3 = labelComponents3d(labels, dims, 6);
  assert.equal(six3.count, 4); // {000, 001}, {012}, {121}, {222}
  assert.equal(six3.labels[at(0, 0, 1, dims)], 1);
  assert.equal(six3.labels[at(2, 2, 2, dims)], 4);
  assert.equal(labelComponents3d(labels, dims).count, 1);
  assert.throws(() => connectedComponent3d(labels, dims, [0, 0, 0], 8 as 6), SegGradCamError);
});

test('component region: the object of the class at the voxel', () => {
  const labels = new Int32Array(64);
  for (const i of [at(0, 0, 0), at(0, 0, 1), at(1, 1, 2), at(3, 3, 3)]) labels[i] = 1;
  const c = { ...ctx, labels, classIndex: 1 };
  assert.deepEqual(ones(volumeRegionMask({ kind: 'component', voxel: [0, 0, 0] }, c)), [at(0, 0, 0), at(0, 0, 1), at(1, 1, 2)]);
  assert.deepEqual(ones(volumeRegionMask({ kind: 'component', voxel: [0, 0, 0], connectivity: 6 }, c)), [at(0, 0, 0), at(0, 0, 1)]);
  assert.throws(() => volumeRegionMask({ kind: 'component', voxel: [2, 2, 2] }, c), /not predicted as class 1/);
});
