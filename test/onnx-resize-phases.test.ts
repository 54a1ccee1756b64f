/**
 * The phase-filter transpose of integer-factor upsamplings (src/engine/onnx/ops/resample-phases.ts):
 * the filter read off a 2x bilinear matrix is the hand-computed one, and axes that are not such a
 * filter keep the dense product. The gradients themselves are checked against finite differences
 * by test/onnx-ops-2.test.ts ("Resize … up x2", "… up x3").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resizeMatrix } from '../src/engine/onnx/ops/resample.js';
import { phaseFilter } from '../src/engine/onnx/ops/resample-phases.js';

test('2x bilinear (half_pixel): output 2i reads 0.25·in[i−1] + 0.75·in[i], output 2i+1 reads 0.75·in[i] + 0.25·in[i+1]', () => {
  const f = phaseFilter(resizeMatrix(5, 10, 2, 'linear', 'half_pixel', 'round_prefer_floor'), 10, 5);
  assert.ok(f);
  assert.equal(f.s, 2);
  assert.equal(f.dmin, -1);
  assert.equal(f.taps, 3);
  // Offsets −1, 0, +1 per phase.
  assert.deepEqual([...f.w], [0.25, 0.75, 0, 0, 0.75, 0.25]);
});

test('nearest 2x (asymmetric, floor) is one tap per phase', () => {
  const f = phaseFilter(resizeMatrix(5, 10, 2, 'nearest', 'asymmetric', 'floor'), 10, 5);
  assert.ok(f);
  assert.deepEqual([f.s, f.dmin, f.taps, ...f.w], [2, 0, 1, 1, 1]);
});

test('align_corners, a non-integer factor and a downsampling keep the dense product', () => {
  assert.equal(phaseFilter(resizeMatrix(5, 10, 2, 'linear', 'align_corners', 'round_prefer_floor'), 10, 5), null);
  assert.equal(phaseFilter(resizeMatrix(6, 9, 1.5, 'linear', 'half_pixel', 'round_prefer_floor'), 9, 6), null);
  assert.equal(phaseFilter(resizeMatrix(10, 5, 0.5, 'linear', 'half_pixel', 'round_prefer_floor'), 5, 10), null);
});

test('a matrix that is an s-phase filter except at one row is refused (the rebuilt matrix must equal it)', () => {
  // A copy: resizeMatrix's matrices are shared.
  const m = Float32Array.from(resizeMatrix(5, 10, 2, 'linear', 'half_pixel', 'round_prefer_floor'));
  m[3 * 5 + 1] += 0.5;
  assert.equal(phaseFilter(m, 10, 5), null);
});
