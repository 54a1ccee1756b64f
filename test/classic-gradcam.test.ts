import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { whole } from '../src/region/region.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

before(useCpu);

/** conv → GAP → dense: a classifier whose class scores are linear in the mean of each feature map. */
function classifier(spatialOutput: boolean) {
  const input = tf.input({ shape: [8, 8, 3] });
  const features = tf.layers
    .conv2d({
      filters: 5,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'features',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }),
    })
    .apply(input) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: 4, name: 'head', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) });
  let out = dense.apply(pooled) as tf.SymbolicTensor;
  if (spatialOutput) {
    // The same class scores at every output pixel: a "segmentation" that is constant across space.
    out = tf.layers.reshape({ targetShape: [1, 1, 4] }).apply(out) as tf.SymbolicTensor;
    out = tf.layers.upSampling2d({ size: [8, 8] }).apply(out) as tf.SymbolicTensor;
  }
  return { model: tf.model({ inputs: input, outputs: out }), dense };
}

/** Classic Grad-CAM by hand: y_c = Σ_k W_kc mean(A_k) + b_c, so α_k = W_kc / N exactly. */
function handAlpha(dense: tf.layers.Layer, c: number, scale: number): number[] {
  const w = dense.getWeights()[0].arraySync() as number[][];
  return w.map((row) => (row[c] * scale) / 64);
}

describe('classic Grad-CAM as a special case', () => {
  test('a classifier ([1, C] output) is explained as a 1x1 map with the hand-computed α', async () => {
    const { model, dense } = classifier(false);
    const explainer = new Explainer(new LayersModelAdapter(model));
    assert.equal(explainer.adapter.output.kind, 'vector');
    const e = await explainer.explain(randomImage(8, 8, 2), { region: whole(), classId: 1, layer: 'features' });
    assert.ok(e.weights);
    assert.ok(maxAbsDiff(e.weights, handAlpha(dense, 1, 1)) < 1e-6);
    explainer.dispose();
  });

  test('on an output constant across space, M = whole image gives classic Grad-CAM (α scaled by |M|, same heatmap)', async () => {
    const spatial = classifier(true);
    const flat = classifier(false);
    const image = randomImage(8, 8, 6);
    const segExplainer = new Explainer(new LayersModelAdapter(spatial.model));
    const clsExplainer = new Explainer(new LayersModelAdapter(flat.model));
    let nonEmpty = 0;
    for (let c = 0; c < 4; c++) {
      const seg = await segExplainer.explain(image, { region: whole(), classId: c, layer: 'features' });
      const cls = await clsExplainer.explain(image, { region: whole(), classId: c, layer: 'features' });
      assert.ok(seg.weights && cls.weights);
      assert.ok(maxAbsDiff(seg.weights, handAlpha(spatial.dense, c, 64)) < 1e-5 * maxAbs(seg.weights));
      assert.ok(maxAbsDiff(seg.heatmap, cls.heatmap) < 1e-5);
      assert.equal(seg.empty, cls.empty);
      if (!seg.empty) nonEmpty++;
    }
    assert.ok(nonEmpty > 0, 'some class must have a non-empty heatmap for this check to mean anything');
    segExplainer.dispose();
    clsExplainer.dispose();
  });
});
