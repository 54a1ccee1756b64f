import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import type { CamMethod } from '../src/methods/index.js';
import { box, whole } from '../src/region/region.js';
import { inputOf, layerOutput, linearHead } from './helpers/method-models.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

/**
 * The Explainer's request options negative, contrastClass/contrastWeight and normalize, checked against values
 * written down from the model's weights and activations (the library-level definitions are in methods-new.test.ts).
 */

before(useCpu);

const relu = (v: number) => Math.max(0, v);
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) =>
  assert.ok(maxAbsDiff(got, want) <= tol * Math.max(1, maxAbs(want)), `${Array.from(got)} vs ${Array.from(want)}`);

describe('contrastive and negative maps through the Explainer (feat → 1x1 conv logits: ∂S/∂A^k_uv = Σ_c w_c W_kc M_uv)', () => {
  const size = 6;
  const K = 4;
  const classes = 3;
  const names = ['sky', 'road', 'car'];
  const model = linearHead(size, K, classes, 3);
  const image = randomImage(size, size, 8);
  const region = box(1, 1, 3, 4);
  const N = size * size;
  const M = new Float64Array(N);
  for (let y = 1; y <= 4; y++) for (let x = 1; x <= 3; x++) M[y * size + x] = 1;
  const areaM = M.reduce((s, v) => s + v, 0);
  let A: Float32Array;
  let W: number[][]; // W[k][class]
  let logits: Float32Array;
  before(() => {
    const x = inputOf(image);
    A = layerOutput(model, 'feat', x);
    logits = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    x.dispose();
    const kd = model.getLayer('logits').getWeights()[0].dataSync();
    W = Array.from({ length: K }, (_, k) => Array.from({ length: classes }, (_, j) => kd[k * classes + j]));
  });
  const positions = Array.from({ length: N }, (_, p) => p);
  const channelSum = (alpha: ArrayLike<number>) => positions.map((p) => Array.from(alpha).reduce((s, al, k) => s + al * A[p * K + k], 0));
  const fresh = () => new Explainer(new LayersModelAdapter(model), { classNames: names });

  // S = Σ_M (y^c − β y^{c′}) with c = 2 ('car'), c′ = 1 ('road'), β = 0.5: α_k = (W_kc − β W_kc′)|M|/N.
  const c = 2;
  const cp = 1;
  const beta = 0.5;
  const request = { region, classId: 'car', layer: 'feat', contrastClass: 'road', contrastWeight: beta };
  const wantAlpha = () => W.map((w) => ((w[c] - beta * w[cp]) * areaM) / N);
  const wantS = () => positions.reduce((s, p) => s + M[p] * (logits[p * classes + c] - beta * logits[p * classes + cp]), 0);

  test('the first request on an image (the primed pass) and a later one (the cached pass) explain y^c − β y^c′ over M', async () => {
    const explainer = fresh();
    for (const pass of ['primed', 'cached']) {
      const e = await explainer.explain(image, request);
      close(e.weights ?? [], wantAlpha());
      close(e.cam, channelSum(wantAlpha()).map(relu));
      assert.ok(Math.abs(e.scoreValue - wantS()) < 1e-4 * Math.max(1, Math.abs(wantS())), `${pass}: S = ${e.scoreValue} vs ${wantS()}`);
      assert.equal(e.classIndex, c);
      assert.equal(e.contrastClassIndex, cp);
      assert.equal(e.contrastClassName, 'road');
      assert.equal(e.contrastWeight, beta);
    }
    // By index, β = 1 by default, through the batched paths (explainMany, explainLayers).
    const alpha1 = W.map((w) => ((w[c] - w[0]) * areaM) / N);
    const [many] = await explainer.explainMany(image, [{ region, classId: c, layer: 'feat', contrastClass: 0 }]);
    close(many.weights ?? [], alpha1);
    const [layered] = await explainer.explainLayers(image, { region, classId: c, contrastClass: '0' }, ['feat', 'feat']);
    close(layered.weights ?? [], alpha1);
    explainer.release();
  });

  test('a contrast class equal to c, unknown, or a weight without a class: typed errors', async () => {
    const explainer = fresh();
    const fails = async (extra: object, pattern: RegExp) =>
      assert.rejects(
        explainer.explain(image, { region, classId: c, layer: 'feat', ...extra }),
        (e: unknown) => e instanceof SegGradCamError && pattern.test(e.message),
      );
    await fails({ contrastClass: 'car' }, /the explained class itself/);
    await fails({ contrastClass: 'bus' }, /unknown class 'bus'/);
    await fails({ contrastClass: 7 }, /out of range/);
    await fails({ contrastWeight: 2 }, /needs a contrast class/);
    explainer.release();
  });

  test('negative: ReLU(−Σ α A) with the explanation’s own α and the layer’s activations', async () => {
    for (const method of ['seg-grad-cam', 'hires-cam', 'xgrad-cam']) {
      const explainer = fresh();
      const e = await explainer.explain(image, { region, classId: c, layer: 'feat', method, negative: true });
      assert.equal(e.negative, true);
      if (e.weights) {
        const signed = channelSum(e.weights);
        assert.ok(signed.some((v) => v > 1e-3) && signed.some((v) => v < -1e-3), 'the check needs both signs');
        close(
          e.cam,
          signed.map((v) => relu(-v)),
        );
      } else {
        // HiRes-CAM: element weights g = W_kc M; the negative map is ReLU(−Σ_k W_kc M A^k).
        close(
          e.cam,
          positions.map((p) => relu(-M[p] * W.reduce((s, w, k) => s + w[c] * A[p * K + k], 0))),
        );
      }
      explainer.release();
    }
    const explainer = fresh();
    await assert.rejects(
      explainer.explain(image, { region, classId: c, method: 'saliency', negative: true }),
      /saliency has no negative map/,
    );
    explainer.release();
  });

  test('tensor counts stay flat over contrast, negative and minmax requests on every path', async () => {
    const explainer = fresh();
    await explainer.predict(image);
    const before = tf.memory().numTensors;
    const r = { region, classId: c, layer: 'feat', contrastClass: 0, negative: true, normalize: 'minmax' as const };
    await explainer.explain(image, r);
    await explainer.explain(image, { ...r, method: 'score-cam', methodOptions: { maxChannels: 2 } });
    await explainer.explain(image, { ...r, truncate: true });
    await explainer.explain(image, { ...r, layers: ['feat', 'input'], method: 'seg-grad-cam' });
    await explainer.explainMany(image, [r, { ...r, contrastClass: 1 }]);
    await explainer.explainLayers(image, r, ['feat', 'feat']);
    await assert.rejects(explainer.explain(image, { ...r, contrastClass: c }));
    assert.equal(tf.memory().numTensors, before);
    explainer.release();
  });
});

describe('normalize through the Explainer, on a CAM written down', () => {
  // A method whose map is the fixed 3x3 grid 1..9 (times `scale`); on a 3x3 image the upsampling is the identity.
  const fixed = (scale = 1): CamMethod => ({
    name: 'fixed',
    usesGradients: false,
    compute: () => ({
      cam: tf.tensor2d(
        [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => v * scale),
        [3, 3],
      ),
      weights: null,
    }),
  });
  const byChannels: CamMethod = {
    name: 'by-channels',
    usesGradients: false,
    compute: (a) => ({
      cam: tf.tensor2d(a.shape[3] === 3 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : [5, 1, 1, 1, 1, 1, 1, 1, 1], [3, 3]),
      weights: null,
    }),
  };
  const model = linearHead(3, 3, 2, 5);
  const image = randomImage(3, 3, 2);

  test("'max': v/9; 'minmax': (v − 1)/8; several layers: each map scaled, their mean scaled again", async () => {
    const explainer = new Explainer(new LayersModelAdapter(model));
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const byMax = await explainer.explain(image, { region: whole(), classId: 1, layer: 'feat', method: fixed() });
    close(
      byMax.heatmap,
      values.map((v) => v / 9),
    );
    assert.equal(byMax.normalize, undefined);
    const byMinMax = await explainer.explain(image, { region: whole(), classId: 1, layer: 'feat', method: fixed(), normalize: 'minmax' });
    close(
      byMinMax.heatmap,
      values.map((v) => (v - 1) / 8),
    );
    assert.equal(byMinMax.normalize, 'minmax');
    assert.equal(byMinMax.camMax, 9);
    // Two layers: 'feat' (3 channels) gets 1..9, 'logits' (2 channels) 5,1,…,1. Each min-max scaled: (v − 1)/8 and
    // (1, 0, …, 0); their mean m = (0.5, 1/16, 2/16, …, 8/16), then min-max again: (m − 1/16)/(7/16).
    const two = await explainer.explain(image, {
      region: whole(),
      layers: ['feat', 'logits'],
      classId: 1,
      method: byChannels,
      normalize: 'minmax',
    });
    const mean = values.map((v, i) => ((v - 1) / 8 + (i === 0 ? 1 : 0)) / 2);
    close(
      two.heatmap,
      mean.map((m) => (m - 1 / 16) / (7 / 16)),
    );
    explainer.dispose();
  });
});

describe('which methods an open model cannot run (the explorer greys them out)', () => {
  test('a U-Net: CAM refused (no GAP + linear head), LRP and Ablation-CAM run; a GAP + dense classifier runs CAM', async () => {
    const { unsupportedMethods } = await import('../src/explain/support.js');
    const unet = new LayersModelAdapter(linearHead(6, 4, 3, 3));
    const before = tf.memory().numTensors;
    const u = await unsupportedMethods(unet, unet.layers());
    assert.deepEqual(Object.keys(u), ['cam']);
    assert.match(u.cam, /global-average-pool \+ linear head .*no layer of this model feeds one/);
    assert.equal(tf.memory().numTensors, before);
    unet.dispose();

    const input = tf.input({ shape: [6, 6, 3] });
    const feat = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'feat' }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(feat) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3 }).apply(pooled) as tf.SymbolicTensor;
    const classifier = new LayersModelAdapter(tf.model({ inputs: input, outputs: out }));
    assert.equal((await unsupportedMethods(classifier, classifier.layers())).cam, undefined);
    classifier.dispose();

    // An engine without the capabilities: each refusal names it.
    const bare = new LayersModelAdapter(linearHead(6, 4, 3, 3));
    const without = Object.assign(Object.create(bare) as LayersModelAdapter, { headKernel: undefined, relevance: undefined });
    const w = await unsupportedMethods(without, bare.layers());
    assert.match(w.cam, /cannot read one/);
    assert.match(w.lrp, /has none/);
    bare.dispose();
  });
});
