// The sanity checks (Adebayo et al. 2018) as a protocol that can fail: a Sobel edge map of the
// image (which never looks at the weights) fails, Seg-Grad-CAM on a small U-Net passes; the
// re-initialisation draws from the declared initializers and resets batch-norm statistics;
// all-zero maps are counted apart, never scored.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { reinitializeLayers, snapshotWeights } from '../src/eval/randomize.js';
import type { ProtocolTile } from '../src/eval/protocol/attribution.js';
import { sobelControl } from '../src/eval/protocol/controls.js';
import { runSanityChecks, sanityCost } from '../src/eval/protocol/sanity-checks.js';
import { sanityReport } from '../src/eval/protocol/sanity-report.js';
import { mean, std } from '../src/eval/stats.js';
import { randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

describe('re-initialisation from the declared initializers', () => {
  before(useCpu);
  test('He-normal kernels get std √(2/fan_in); batch-norm γ, β, moving mean and variance reset to 1, 0, 0, 1; seeded', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = tf.layers.conv2d({
      filters: 32,
      kernelSize: 3,
      useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: 1 }),
      name: 'c',
    });
    const bn = tf.layers.batchNormalization({ name: 'bn' });
    const model = tf.model({ inputs: input, outputs: bn.apply(conv.apply(input)) as tf.SymbolicTensor });
    // a "trained" state: every batch-norm weight away from its initial value
    const trained = bn.getWeights().map((w, i) => tf.fill(w.shape, [1.7, 0.3, -0.4, 2.5][i]));
    bn.setWeights(trained);
    tf.dispose(trained);
    const snap = snapshotWeights(model);
    const before = tf.memory().numTensors;
    const records = reinitializeLayers(model, ['c', 'bn'], 9);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    const [g, b, mm, mv] = bn.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(
      [g, b, mm, mv].map((v) => [Math.min(...v), Math.max(...v)]),
      [
        [1, 1],
        [0, 0],
        [0, 0],
        [1, 1],
      ],
    );
    const k = Array.from(conv.getWeights()[0].dataSync());
    // fan_in = 3·3·3 = 27: σ = √(2/27) = 0.272 (truncated at 2σ: the std of the draws is 0.88σ)
    const sd = std(k);
    assert.ok(Math.abs(sd / (0.87962566 * Math.sqrt(2 / 27)) - 1) < 0.08, `std ${sd}`);
    assert.ok(Math.abs(mean(k)) < 0.03);
    assert.ok(Math.max(...k.map(Math.abs)) <= 2 * Math.sqrt(2 / 27) + 1e-6, 'truncated at 2σ');
    assert.deepEqual(
      records.map((r) => r.weight),
      ['kernel', 'gamma', 'beta', 'moving_mean', 'moving_variance'],
    );
    assert.match(records[0].initializer, /scale 2, fanIn, normal/);
    snap.restore();
    reinitializeLayers(model, ['c'], 9);
    assert.deepEqual(Array.from(conv.getWeights()[0].dataSync()), k, 'same seed, same draws');
    reinitializeLayers(model, ['c'], 10);
    assert.notDeepEqual(Array.from(conv.getWeights()[0].dataSync()), k, 'another seed, other draws');
    snap.dispose();
    model.dispose();
  });
});

describe('the sanity-check protocol', () => {
  before(useCpu);
  const size = 16;
  const tiles: ProtocolTile[] = Array.from({ length: 8 }, (_, t) => {
    const region = new Uint8Array(size * size);
    for (let y = 4; y < 11; y++) for (let x = 3 + (t % 3); x < 10 + (t % 3); x++) region[y * size + x] = 1;
    return { id: t, image: randomImage(size, size, 11 + t), region, classId: 2 };
  });

  test('the edge detector fails, Seg-Grad-CAM passes; an all-zero map is counted, not scored; no tensor leaks', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(size, 3, 4)));
    const model = explainer.adapter.layersModel!()!;
    const trained = model.getWeights().map((w) => Array.from(w.dataSync()));
    const conditions = [
      { label: 'seg-grad-cam', method: 'seg-grad-cam', layer: 'dec1' },
      { label: 'sobel', attribute: sobelControl },
      { label: 'zeros', attribute: () => new Float32Array(size * size) },
    ];
    const before = tf.memory().numTensors;
    let calls = 0;
    const r = await runSanityChecks(explainer, tiles, conditions, { seeds: [1, 2, 3], resamples: 300, onProgress: () => calls++ });
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.deepEqual(
      model.getWeights().map((w) => Array.from(w.dataSync())),
      trained,
      'the trained weights are restored',
    );
    assert.equal(calls, sanityCost(8, 3, 4, { seeds: [1, 2, 3] }));
    assert.deepEqual(r.options.blocks, ['logits', 'dec1', 'bottleneck', 'enc1']);
    const [sgc, sob, zeros] = r.conditions;
    // The control ignores the weights: identical maps at every step, so it must fail.
    assert.equal(sob.verdict.cascading, 'fail');
    assert.equal(sob.verdict.logit, 'fail');
    for (const s of [...sob.cascading, ...sob.independent]) {
      assert.equal(s.scored, 24, '8 tiles × 3 seeds');
      assert.deepEqual([s.mean.spearman, s.mean.absSpearman, s.mean.ssim, s.mean.hog], [1, 1, 1, 1]);
    }
    // Seg-Grad-CAM depends on the weights.
    assert.equal(sgc.verdict.cascading, 'pass', sgc.verdict.reason);
    assert.equal(sgc.verdict.logit, 'pass', sgc.verdict.reason);
    const last = sgc.cascading[sgc.cascading.length - 1];
    assert.ok(last.mean.absSpearman < 0.5 && last.absSpearmanCi.high < 0.8, sgc.verdict.reason);
    assert.equal(last.scored + last.emptyRandomised, 24 - 3 * sgc.emptyOriginal);
    // All-zero maps: counted apart, never scored as a correlation.
    assert.equal(zeros.emptyOriginal, 8);
    for (const s of zeros.cascading) assert.equal(s.scored, 0);
    assert.ok(Number.isNaN(zeros.cascading[0].mean.absSpearman));
    assert.equal(zeros.verdict.cascading, 'undetermined');
    const rep = sanityReport(r);
    assert.match(rep.markdown, /\| sobel \| \*\*FAIL\*\* \/ \*\*FAIL\*\* \|/);
    assert.match(rep.markdown, /\| seg-grad-cam \| pass \/ pass \|/);
    assert.ok(Object.values(rep.images)[0].length > 1000);
    explainer.dispose();
  });

  test('bad input is a typed error; the weights are restored when a condition throws', async () => {
    const explainer = new Explainer(new LayersModelAdapter(tinyUnet(size, 3, 4)));
    const model = explainer.adapter.layersModel!()!;
    const trained = model.getWeights().map((w) => Array.from(w.dataSync()));
    await assert.rejects(runSanityChecks(explainer, tiles, [{ label: 'a' }], { blocks: ['nope'] }), /unknown block 'nope'/);
    await assert.rejects(runSanityChecks(explainer, tiles, [{ label: 'a' }], { seeds: [] }), /at least one seed/);
    let n = 0;
    const failing = {
      label: 'fails later',
      attribute: () => {
        if (++n > 10) throw new Error('boom');
        return new Float32Array(size * size).fill(1);
      },
    };
    const before = tf.memory().numTensors;
    await assert.rejects(runSanityChecks(explainer, tiles, [failing], { seeds: [1], logitTest: false }), /boom/);
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(
      model.getWeights().map((w) => Array.from(w.dataSync())),
      trained,
    );
    explainer.dispose();
  });
});
