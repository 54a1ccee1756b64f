import assert from 'node:assert/strict';
import { test } from 'node:test';
import { threadsPerWorker } from '../src/batch/pool.js';

test('threadsPerWorker shares the cores out among the worker threads, at least one each', () => {
  assert.equal(threadsPerWorker(1, 2), 2);
  assert.equal(threadsPerWorker(2, 2), 1);
  assert.equal(threadsPerWorker(3, 2), 1);
  assert.equal(threadsPerWorker(2, 8), 4);
  assert.equal(threadsPerWorker(3, 8), 2);
  assert.equal(threadsPerWorker(0, 4), 4);
});
