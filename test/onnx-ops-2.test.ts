/**
 * The op records of the transformer and modern-CNN families (normalisations, element-wise
 * functions, indexing, reductions, dilated convolutions) against central finite differences of
 * ONNX Runtime forward runs, on the small graphs of ./helpers/op-models-2.ts: ∂S/∂input, where
 * S = Σ w·logits for Gaussian weights w, so every op of the graph is on the path.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER } from '../src/engine/contract.js';
import { OnnxModelAdapter as Adapter } from '../src/engine/onnx/adapter.js';
import { nchwToNhwc, nhwcToNchw } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeModel } from '../src/engine/onnx/proto.js';
import { finiteDifferences, gaussian, uniform } from '../scripts/onnx/reference.js';
import { OP_MODELS_2 } from './helpers/op-models-2.js';
import { useCpu } from './helpers/setup.js';

before(useCpu);

/** ∂S/∂input against central differences at every input element (elements at a kink re-measured with ε/10). */
async function checkInput(ad: Adapter, seed: number) {
  const an = ad.analysis;
  const [, c, h, w] = ad.inputDims;
  const xN = uniform(c * h * w, seed);
  const x = tf.tensor4d(nchwToNhwc(xN, 1, c, h, w), [1, h, w, c]);
  const pass = await ad.forward(x);
  x.dispose();
  const weights = gaussian(pass.logitsData.length, seed + 1);
  const cot = ad.cotangentNchw(weights);
  const g = await pass.gradient(INPUT_LAYER, { weights, on: 'logits', offset: 0 });
  const ours = nhwcToNchw(g.gradients.dataSync(), 1, h, w, c);
  tf.dispose([g.activations, g.gradients]);
  pass.dispose();
  const idx = Array.from({ length: ours.length }, (_, i) => i);
  const eps = 1e-3;
  const fd = await finiteDifferences(an, an.inputName, ad.logitsName, xN, cot, idx, eps);
  let scale = 0;
  for (const v of fd) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 1e-3, `the check needs non-trivial gradients (max |∂S/∂x| = ${scale})`);
  const tol = (rel: number) => rel * scale + 1e-4;
  const bad = idx.filter((i) => Math.abs(fd[i] - ours[i]) > tol(2e-3));
  assert.ok(bad.length <= ours.length / 10, `${bad.length} of ${ours.length} elements differ from finite differences`);
  if (bad.length > 0) {
    const fine = await finiteDifferences(an, an.inputName, ad.logitsName, xN, cot, bad, eps / 10);
    bad.forEach((i, k) =>
      assert.ok(Math.abs(fine[k] - ours[i]) <= tol(2e-2), `[${i}]: gradient ${ours[i]} vs ${fd[i]} (ε) and ${fine[k]} (ε/10)`),
    );
  }
}

describe('op records vs finite differences (transformer and modern-CNN ops)', () => {
  for (const [name, model] of OP_MODELS_2) {
    test(name, async () => {
      const ad = await Adapter.create(encodeModel(model), nodeRuntime);
      try {
        await checkInput(ad, 31);
      } finally {
        ad.dispose();
      }
    });
  }
});
