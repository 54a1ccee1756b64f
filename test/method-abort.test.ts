/**
 * Multi-pass methods whose model call fails part-way (an engine error, or the explorer's worker
 * stopping a stale job at its next pass) leave no tensor behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter, Objective } from '../src/engine/contract.js';
import { createMethod, isModelMethod, type MethodContext } from '../src/methods/index.js';
import { useCpu } from './helpers/setup.js';

/** An adapter whose input gradients and scores fail on the `failAt`-th call (the earlier ones return zeros). */
function failingAdapter(failAt: number): ModelAdapter {
  let calls = 0;
  const call = () => {
    if (++calls >= failAt) throw new Error('stopped');
  };
  return {
    kind: 'test',
    input: { height: 8, width: 8, channels: 3 },
    output: { height: 8, width: 8, channels: 2, activation: 'none' },
    maxBatch: 8,
    layers: () => [],
    forward: () => Promise.reject(new Error('not used')),
    scores: async (inputs: tf.Tensor4D) => {
      call();
      return new Float32Array(inputs.shape[0]).fill(1);
    },
    inputGradients: async (inputs: tf.Tensor4D) => {
      call();
      return { gradients: tf.zerosLike(inputs), scores: new Float32Array(inputs.shape[0]) };
    },
    dispose: () => undefined,
  } as unknown as ModelAdapter;
}

for (const [name, options] of [
  ['smoothgrad', { samples: 6, batchSize: 2 }],
  ['integrated-gradients', { steps: 6, batchSize: 2 }],
  ['grid-saliency', { iterations: 5 }],
] as const) {
  test(`${name}: a model call that fails part-way leaves no tensor behind`, async () => {
    await useCpu();
    const input = tf.randomUniform([1, 8, 8, 3]) as tf.Tensor4D;
    const objective: Objective = { weights: new Float32Array(8 * 8 * 2).fill(1), on: 'logits', offset: 0 };
    const method = createMethod(name, options);
    assert.ok(isModelMethod(method));
    const before = tf.memory().numTensors;
    const ctx = {
      adapter: failingAdapter(3),
      pass: { output: input, dispose: () => undefined },
      input,
      layer: { name: 'input' },
      objective,
      inputRange: [0, 1],
    } as unknown as MethodContext;
    await assert.rejects(method.explain(ctx), /stopped/);
    assert.equal(tf.memory().numTensors, before);
    input.dispose();
  });
}
