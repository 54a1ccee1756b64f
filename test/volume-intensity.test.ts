/** Intensity preprocessing on hand-computed cases. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import { clipPercentiles, ctWindow, percentile, zScore } from '../src/volume/intensity.js';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('z-score: [1, 2, 3, 4] has mean 2.5 and population std √1.25', () => {
  const s = Math.sqrt(1.25);
  close(zScore(Float32Array.of(1, 2, 3, 4)), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]);
  // statistics over the mask [2, 4] (mean 3, std 1), applied to every voxel
  close(zScore(Float32Array.of(1, 2, 3, 4), { mask: [0, 1, 0, 1] }), [-2, -1, 0, 1]);
  // a constant volume: std floored, no NaN
  close(zScore(Float32Array.of(5, 5)), [0, 0]);
  assert.throws(() => zScore(Float32Array.of(1), { mask: [0] }), SegGradCamError);
});

test('percentiles with linear interpolation (numpy default)', () => {
  const v = [5, 1, 4, 2, 3];
  assert.equal(percentile(v, 0), 1);
  assert.equal(percentile(v, 100), 5);
  assert.equal(percentile(v, 50), 3);
  assert.ok(Math.abs(percentile(v, 10) - 1.4) < 1e-12); // index 0.4 between 1 and 2
  assert.ok(Math.abs(percentile(v, 95) - 4.8) < 1e-12); // index 3.8 between 4 and 5
  assert.throws(() => percentile(v, 101), SegGradCamError);
});

test('clip to percentiles', () => {
  // 11 values 0..10: P10 = 1, P90 = 9
  const v = Float32Array.from({ length: 11 }, (_, i) => i);
  close(clipPercentiles(v, { low: 10, high: 90 }), [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]);
  assert.throws(() => clipPercentiles(v, { low: 50, high: 50 }), SegGradCamError);
});

test('CT window: level 40, width 80 is [0, 80] HU onto [0, 1]', () => {
  close(ctWindow(Float32Array.of(-1000, 0, 40, 60, 80, 3000), { level: 40, width: 80 }), [0, 0, 0.5, 0.75, 1, 1]);
  close(ctWindow(Float32Array.of(-1350, -600, 150), 'lung'), [0, 0.5, 1]);
  assert.throws(() => ctWindow(Float32Array.of(0), 'liver-ish'), SegGradCamError);
  assert.throws(() => ctWindow(Float32Array.of(0), { level: 0, width: 0 }), SegGradCamError);
});
