/**
 * Second derivatives through average pooling: TF.js has no gradient of AvgPoolGrad; ours
 * (src/backend/kernels/second-order.ts) is average pooling of the cotangent. Checked against the
 * Hessian-vector product written with first derivatives only: for f(x) = Σ c ⊙ avgPool(x)²,
 * H·v = ∇_x Σ (2c ⊙ avgPool(v)) ⊙ avgPool(x).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { registerKernelFixes } from '../src/backend/index.js';

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: nested tf.grad through avgPool, depthwise convolutions and resizes equals H·v in closed form`, async () => {
    registerKernelFixes();
    await tf.setBackend(backend);
    await tf.ready();
    const before = tf.memory().numTensors;
    for (const pad of ['same', 'valid'] as const) {
      tf.tidy(() => {
        const x = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 1) as tf.Tensor4D;
        const v = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 2) as tf.Tensor4D;
        const pool = (t: tf.Tensor4D) => tf.avgPool(t, 3, 2, pad);
        const c = tf.randomNormal(pool(x).shape, 0, 1, 'float32', 3);
        const f = (t: tf.Tensor) => tf.sum(tf.mul(c, tf.square(pool(t as tf.Tensor4D))));
        const nested = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(t), v)))(x);
        const cv = tf.mul(tf.mul(c, 2), pool(v));
        const closed = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(cv, pool(t as tf.Tensor4D))))(x);
        const a = nested.dataSync();
        const b = closed.dataSync();
        let err = 0;
        let scale = 0;
        for (let i = 0; i < b.length; i++) {
          err = Math.max(err, Math.abs(a[i] - b[i]));
          scale = Math.max(scale, Math.abs(b[i]));
        }
        assert.ok(scale > 0.1, `H·v is not trivial (${scale})`);
        assert.ok(err <= 1e-5 * scale, `${pad}: |nested − closed| = ${err} (scale ${scale})`);
      });
    }
    // The same for resizes (2x up, 7x6 → 3x4 down), bilinear with each coordinate rule and nearest.
    const filter = tf.randomNormal([3, 3, 2, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    const ops: Array<[string, (t: tf.Tensor4D) => tf.Tensor4D]> = [
      ['depthwise stride 2 same', (t) => tf.depthwiseConv2d(t, filter, 2, 'same')],
      ['depthwise stride 1 valid', (t) => tf.depthwiseConv2d(t, filter, 1, 'valid')],
    ];
    for (const [name, op] of ops) {
      tf.tidy(() => {
        const x = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 8) as tf.Tensor4D;
        const v = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 9) as tf.Tensor4D;
        const c = tf.randomNormal(op(x).shape, 0, 1, 'float32', 10);
        const f = (t: tf.Tensor) => tf.sum(tf.mul(c, tf.square(op(t as tf.Tensor4D))));
        const nested = tf
          .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(t), v)))(x)
          .dataSync();
        const cv = tf.mul(tf.mul(c, 2), op(v));
        const closed = tf
          .grad((t: tf.Tensor) => tf.sum(tf.mul(cv, op(t as tf.Tensor4D))))(x)
          .dataSync();
        let err = 0;
        let scale = 0;
        for (let i = 0; i < closed.length; i++) {
          err = Math.max(err, Math.abs(nested[i] - closed[i]));
          scale = Math.max(scale, Math.abs(closed[i]));
        }
        assert.ok(scale > 0.1, `${name}: H·v is not trivial (${scale})`);
        assert.ok(err <= 1e-5 * scale, `${name}: |nested − closed| = ${err} (scale ${scale})`);
      });
    }
    filter.dispose();
    const resizes: Array<[string, (t: tf.Tensor4D, size: [number, number]) => tf.Tensor4D]> = [
      ['bilinear', (t, s) => tf.image.resizeBilinear(t, s)],
      ['bilinear align-corners', (t, s) => tf.image.resizeBilinear(t, s, true)],
      ['bilinear half-pixel', (t, s) => tf.image.resizeBilinear(t, s, false, true)],
      ['nearest half-pixel', (t, s) => tf.image.resizeNearestNeighbor(t, s, false, true)],
    ];
    for (const [name, resize] of resizes) {
      for (const size of [
        [14, 12],
        [3, 4],
      ] as Array<[number, number]>) {
        tf.tidy(() => {
          const x = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 4) as tf.Tensor4D;
          const v = tf.randomNormal([1, 7, 6, 2], 0, 1, 'float32', 5) as tf.Tensor4D;
          const c = tf.randomNormal([1, ...size, 2], 0, 1, 'float32', 6);
          const r = (t: tf.Tensor) => resize(t as tf.Tensor4D, size);
          const f = (t: tf.Tensor) => tf.sum(tf.mul(c, tf.square(r(t))));
          const nested = tf
            .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.grad(f)(t), v)))(x)
            .dataSync();
          const cv = tf.mul(tf.mul(c, 2), r(v));
          const closed = tf
            .grad((t: tf.Tensor) => tf.sum(tf.mul(cv, r(t))))(x)
            .dataSync();
          let err = 0;
          let scale = 0;
          for (let i = 0; i < closed.length; i++) {
            err = Math.max(err, Math.abs(nested[i] - closed[i]));
            scale = Math.max(scale, Math.abs(closed[i]));
          }
          assert.ok(scale > 0.1, `${name} ${size.join('x')}: H·v is not trivial (${scale})`);
          assert.ok(err <= 1e-5 * scale, `${name} ${size.join('x')}: |nested − closed| = ${err} (scale ${scale})`);
        });
      }
    }
    assert.equal(tf.memory().numTensors, before);
  });
}
