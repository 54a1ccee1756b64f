import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { registerKernelFixes, setupBackend } from '../src/backend/index.js';
import { nodeWasmDir } from '../src/backend/node.js';

tf.env().set('PROD', true);

test('setupBackend: wasm (SIMD, one thread) and cpu, idempotent', async () => {
  assert.equal(await setupBackend(), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(getThreadsCount(), 1);
  assert.equal(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), true);
  registerKernelFixes();
  registerKernelFixes();
  assert.equal(await setupBackend('cpu'), 'cpu');
  assert.equal(await setupBackend('wasm'), 'wasm');
  for (const k of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
    assert.ok(tf.getKernel(k, 'wasm'), k);
  }
  const y = tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 1]) as tf.Tensor4D, 1, 'same'));
  assert.deepEqual(Array.from(await y.data()).slice(0, 4), [4, 6, 6, 4]);
  y.dispose();
});

test('nodeWasmDir points at the SIMD binary', () => {
  assert.ok(existsSync(nodeWasmDir() + 'tfjs-backend-wasm-simd.wasm'));
});
