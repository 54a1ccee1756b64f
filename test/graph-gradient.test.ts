import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../src/engine/contract.js';
import { GraphModelAdapter } from '../src/engine/tfjs-graph/adapter.js';
import { loadModelFile } from '../src/engine/tfjs/load-node.js';
import { regionObjective } from '../src/region/objective.js';
import { maxAbs, useCpu } from './helpers/setup.js';

const SELFIE = 'models/selfie/selfie.json';
let adapter: ModelAdapter;

before(async () => {
  await useCpu();
  adapter = await loadModelFile(SELFIE);
});

describe('GraphModel adapter (MediaPipe selfie)', () => {
  test('reads the sigmoid output as a binary map of logits and lists its nodes', () => {
    assert.ok(adapter instanceof GraphModelAdapter);
    assert.equal((adapter as GraphModelAdapter).logitsNode, 'segment_add');
    assert.deepEqual(adapter.output, { kind: 'map', height: 256, width: 256, channels: 1, activation: 'sigmoid' });
    const enc = adapter.layers().find((l) => l.name === 'add_4__xeno_compat__1');
    assert.deepEqual(enc?.outputShape, [1, 16, 16, 32]);
  });

  test('α at the 16x16 encoder output equals central finite differences', async () => {
    const layer = 'add_4__xeno_compat__1';
    const x = tf.randomUniform([1, 256, 256, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
    const pass = await adapter.forward(x);
    // M: a 16x16 patch of output pixels, class 1 (person) on logits.
    const mask = new Uint8Array(256 * 256);
    for (let y = 100; y < 116; y++) for (let xx = 120; xx < 136; xx++) mask[y * 256 + xx] = 1;
    const objective = regionObjective(adapter.output, 1, mask, 'logits');
    const { activations, gradients } = await pass.gradient(layer, objective);
    const alpha = tf.tidy(() => tf.mean(gradients, [0, 1, 2]).dataSync());

    // S with the node fed a perturbed value, the rest of the graph as the model defines it:
    // everything else is recomputed from the input by execute() itself. The two outputs are
    // subtracted pixel by pixel before summing, so float32 rounding of the large S cancels.
    const model = (adapter as GraphModelAdapter).model;
    const logitsAt = (a: tf.Tensor) => model.execute({ input_1: x, [layer]: a }, 'segment_add') as tf.Tensor;
    const weights = tf.tensor(objective.weights, [1, 256, 256, 1]);
    const eps = 1e-3;
    const [, h, w, k] = activations.shape;
    const scale = maxAbs(alpha);
    for (const c of [0, 5, 13, 31]) {
      const fd = tf.tidy(() => {
        const dir = tf.oneHot(tf.fill([1, h, w], c, 'int32'), k).cast('float32');
        const diff = tf.sub(logitsAt(activations.add(dir.mul(eps))), logitsAt(activations.sub(dir.mul(eps))));
        return tf.sum(tf.mul(diff, weights)).dataSync()[0] / (2 * eps) / (h * w);
      });
      assert.ok(Math.abs(alpha[c] - fd) < 1e-2 * scale, `channel ${c}: α ${alpha[c]} vs finite difference ${fd} (scale ${scale})`);
    }
    weights.dispose();
    tf.dispose([x, activations, gradients]);
    pass.dispose();
  });
});
