// The evaluation's metrics against toy cases with known answers (src/eval/).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { areaShare, biasShare } from '../src/eval/bias.js';
import { instrumentAdapter } from '../src/eval/cost.js';
import { cosineMatrix, pca } from '../src/eval/embedding.js';
import {
  curveArea,
  curveImages,
  heatmapOrder,
  perturbationCurve,
  randomOrder,
  stepCounts,
  type BatchScorer,
} from '../src/eval/perturbation.js';
import { barChart, lineChart, matrixPlot, scatterPlot } from '../src/eval/plot.js';
import { niceTicks, tickLabel } from '../src/eval/canvas.js';
import { blockOf, cascadeSteps, randomizeLayers, snapshotWeights } from '../src/eval/randomize.js';
import { defaultLayers } from '../src/eval/setup.js';
import { auroc, mean, median, pearson, ranks, spearman, std } from '../src/eval/stats.js';
import { Explainer } from '../src/explain.js';
import { mulberry32 } from '../src/methods/random.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { box } from '../src/region/region.js';
import { randomImage, useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

const close = (a: number, b: number, tol = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b}`);

describe('statistics', () => {
  test('AUROC of separable, identical and reversed samples is 1, 0.5 and 0', () => {
    assert.equal(auroc([3, 4, 5], [0, 1, 2]), 1);
    assert.equal(auroc([1, 2, 3], [1, 2, 3]), 0.5);
    assert.equal(auroc([0, 1, 2], [3, 4, 5]), 0);
    assert.equal(auroc([7, 7], [7, 7, 7]), 0.5, 'ties count one half');
    // One of four pairs reversed: P(p > n) = 3/4.
    assert.equal(auroc([1, 3], [0, 2]), 0.75);
    assert.ok(Number.isNaN(auroc([], [1])));
  });

  test('Spearman of a monotone transform is 1, of a reversed order −1; ties get mean ranks', () => {
    const x = [0.3, -1, 2, 5, 0.1, 4];
    close(
      spearman(
        x,
        x.map((v) => Math.exp(3 * v) + 7),
      ),
      1,
      1e-12,
    );
    close(
      spearman(
        x,
        x.map((v) => -v * v * v),
      ),
      -1,
      1e-12,
    );
    assert.deepEqual(Array.from(ranks([10, 20, 20, 5])), [2, 3.5, 3.5, 1]);
    assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])), 'a constant map has no ranking');
    close(pearson([1, 2, 3], [2, 4, 6]), 1, 1e-12);
  });

  test('summaries skip undefined (NaN) values', () => {
    assert.equal(mean([1, Number.NaN, 3]), 2);
    assert.equal(median([5, 1, Number.NaN, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    close(std([1, 2, 3, 4]), Math.sqrt(5 / 3), 1e-12);
    assert.ok(Number.isNaN(mean([])));
  });
});

describe('bias share', () => {
  test('the share of positive heatmap mass on the mask, by hand', () => {
    // Positive mass 1 + 2 + 3 = 6 (the −1 is ignored); on the mask: 1 + 3 = 4.
    close(biasShare([1, 2, 3, -1, 0], [1, 0, 1, 1, 0]), 4 / 6, 1e-12);
    assert.equal(biasShare([0, 5, 0], [1, 0, 1]), 0);
    assert.equal(biasShare([2, 0, 2], [1, 1, 1]), 1);
    assert.ok(Number.isNaN(biasShare([0, 0, -1], [1, 1, 1])), 'an empty heatmap has no share');
    assert.equal(areaShare([1, 0, 1, 1]), 0.75);
    assert.throws(() => biasShare([1, 2], [1]), RangeError);
  });
});

describe('deletion and insertion', () => {
  // A toy "model": S = the sum of pixels 0 and 1 of a 4-pixel, single-channel image.
  const relevant = [0, 1];
  const toyScore: BatchScorer = async (images, count) => {
    const n = images.length / count;
    return Float32Array.from({ length: count }, (_, b) => relevant.reduce((s, p) => s + images[b * n + p], 0));
  };
  const image = new Float32Array([1, 1, 1, 1]);
  const baseline = new Float32Array(4);

  test('step counts round j·n/k', () => {
    assert.deepEqual(stepCounts(10, 4), [0, 3, 5, 8, 10]);
    assert.deepEqual(stepCounts(4, 4), [0, 1, 2, 3, 4]);
    assert.throws(() => stepCounts(4, 0), RangeError);
  });

  test('deletion AUC by hand, and it beats a random order', async () => {
    const heatmap = [1, 0.5, 0, 0];
    const order = heatmapOrder(heatmap, mulberry32(1));
    assert.deepEqual(Array.from(order.slice(0, 2)), [0, 1]);
    const curve = await perturbationCurve(image, baseline, order, 4, 1, toyScore);
    // S after deleting 0..4 pixels: 2, 1, 0, 0, 0 → trapezoid (2/2 + 1 + 0 + 0 + 0/2) / 4 = 0.5.
    assert.deepEqual(Array.from(curve), [2, 1, 0, 0, 0]);
    assert.equal(curveArea(curve), 0.5);
    // A random order: E[S_j] = 2 (1 − j/4) → curve 2, 1.5, 1, 0.5, 0 → AUC 1.
    const random = mulberry32(7);
    const areas: number[] = [];
    for (let r = 0; r < 400; r++) areas.push(curveArea(await perturbationCurve(image, baseline, randomOrder(4, random), 4, 1, toyScore)));
    close(mean(areas), 1, 0.06, 'random deletion AUC');
    assert.ok(curveArea(curve) < mean(areas));
  });

  test('insertion AUC by hand (reveal the image on the baseline)', async () => {
    const order = heatmapOrder([1, 0.5, 0, 0], mulberry32(1));
    const curve = await perturbationCurve(baseline, image, order, 4, 1, toyScore);
    // S after inserting 0..4 pixels: 0, 1, 2, 2, 2 → (0/2 + 1 + 2 + 2 + 2/2) / 4 = 1.5.
    assert.deepEqual(Array.from(curve), [0, 1, 2, 2, 2]);
    assert.equal(curveArea(curve), 1.5);
  });

  test('ties are broken by the seeded permutation; every channel of a pixel moves together', () => {
    const a = heatmapOrder([0, 0, 1, 0, 0, 0], mulberry32(3));
    assert.equal(a[0], 2);
    assert.deepEqual([...a].sort(), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(Array.from(heatmapOrder([0, 0, 1, 0, 0, 0], mulberry32(3))), Array.from(a), 'seeded: reproducible');
    const from = Float32Array.from({ length: 6 }, (_, i) => i + 1); // 3 pixels × 2 channels
    const to = new Float32Array(6);
    const imgs = curveImages(from, to, Int32Array.from([1, 0, 2]), 3, 2);
    assert.deepEqual(Array.from(imgs.slice(6, 12)), [1, 2, 0, 0, 5, 6]);
    assert.deepEqual(Array.from(imgs.slice(18)), [0, 0, 0, 0, 0, 0]);
  });
});

describe('α across locations', () => {
  test('cosine matrix of hand vectors', () => {
    const m = cosineMatrix([
      [1, 0],
      [0, 2],
      [3, 3],
      [-1, 0],
    ]);
    const n = 4;
    const at = (i: number, j: number) => m[i * n + j];
    close(at(0, 0), 1);
    close(at(0, 1), 0);
    close(at(0, 2), Math.SQRT1_2, 1e-12);
    close(at(1, 2), Math.SQRT1_2, 1e-12);
    close(at(0, 3), -1);
    close(at(2, 3), -Math.SQRT1_2, 1e-12);
    assert.equal(at(3, 2), at(2, 3));
    assert.ok(
      Number.isNaN(
        cosineMatrix([
          [0, 0],
          [1, 0],
        ])[1],
      ),
      'a zero vector has no direction',
    );
  });

  test('PCA by power iteration finds the direction of points on a line', () => {
    const pts = [-2, -1, 0, 1, 2].map((t) => [3 * t + 1, 4 * t - 2, 0.001 * (t % 2)]);
    const p = pca(pts, 2, { seed: 1 });
    close(Math.abs(p.axes[0][0]), 0.6, 1e-4);
    close(Math.abs(p.axes[0][1]), 0.8, 1e-4);
    close(p.explained[0], 1, 1e-4);
    // Projections on PC1 are 5·t (up to sign).
    close(Math.abs(p.coords[4][0]), 10, 1e-3);
  });
});

describe('cascading randomisation and cost', () => {
  before(useCpu);

  test('blocks from the output down; re-drawn weights are seeded; the snapshot restores', () => {
    assert.equal(blockOf('dec2_conv1'), 'dec2');
    assert.equal(blockOf('up3'), 'dec3');
    assert.equal(blockOf('logits'), 'logits');
    const model = tinyUnet(8, 3, 2);
    const steps = cascadeSteps(model);
    assert.deepEqual(
      steps.map((s) => s.name),
      ['logits', 'dec1', 'bottleneck', 'enc1'],
    );
    assert.deepEqual(steps[1].layers, ['dec1', 'up1']);
    const before = model.getLayer('dec1').getWeights()[0].dataSync().slice();
    const snap = snapshotWeights(model);
    randomizeLayers(model, ['dec1'], 5);
    const once = model.getLayer('dec1').getWeights()[0].dataSync().slice();
    assert.ok(
      once.some((v, i) => v !== before[i]),
      'weights changed',
    );
    // Same std as before (within sampling error of 144 values).
    const sd = (a: ArrayLike<number>) => std(Array.from(a));
    assert.ok(Math.abs(sd(once) / sd(before) - 1) < 0.3, `std ratio ${sd(once) / sd(before)}`);
    snap.restore();
    randomizeLayers(model, ['dec1'], 5);
    assert.deepEqual(model.getLayer('dec1').getWeights()[0].dataSync().slice(), once, 'same seed, same weights');
    snap.restore();
    assert.deepEqual(model.getLayer('dec1').getWeights()[0].dataSync().slice(), before);
    snap.dispose();
    model.dispose();
  });

  test('instrumented adapter counts forward and backward passes per method', async () => {
    const counter = instrumentAdapter(new LayersModelAdapter(tinyUnet(8, 3, 3)));
    const explainer = new Explainer(counter.adapter);
    const image = randomImage(8, 8, 2);
    const request = { region: box(1, 1, 5, 5), classId: 1, layer: 'bottleneck' };
    await explainer.predict(image);
    assert.deepEqual(counter.take(), { forward: 1, backward: 0 });
    await explainer.explain(image, { ...request, method: 'seg-grad-cam' });
    assert.deepEqual(counter.take(), { forward: 0, backward: 1 }, 'one backward pass, the forward pass is cached');
    await explainer.explain(image, { ...request, method: 'eigen-cam' });
    assert.deepEqual(counter.take(), { forward: 0, backward: 0 });
    await explainer.explain(image, { ...request, method: 'score-cam', methodOptions: { maxChannels: 4 } });
    assert.deepEqual(counter.take(), { forward: 5, backward: 0 }, 'the baseline and 4 masked images');
    await explainer.explain(image, { ...request, method: 'integrated-gradients', methodOptions: { steps: 4 } });
    assert.deepEqual(counter.take(), { forward: 5, backward: 5 });
    counter.restore();
    await explainer.explain(image, { ...request, method: 'integrated-gradients', methodOptions: { steps: 4 } });
    assert.deepEqual(counter.take(), { forward: 0, backward: 0 }, 'restored: no longer counted');
    explainer.dispose();
  });

  test('default layers: an early encoder layer, the bottleneck, a decoder layer', () => {
    const shapes = (s: number, c = 4) => [1, s, s, c];
    const layers = [
      { name: 'e1', type: 'Conv2D', outputShape: shapes(16) },
      { name: 'p1', type: 'MaxPooling2D', outputShape: shapes(8) },
      { name: 'e2', type: 'Conv2D', outputShape: shapes(8) },
      { name: 'p2', type: 'MaxPooling2D', outputShape: shapes(4) },
      { name: 'b', type: 'Conv2D', outputShape: shapes(4) },
      { name: 'u2', type: 'Conv2DTranspose', outputShape: shapes(8) },
      { name: 'd2', type: 'Conv2D', outputShape: shapes(8) },
      { name: 'u1', type: 'Conv2DTranspose', outputShape: shapes(16) },
      { name: 'd1', type: 'Conv2D', outputShape: shapes(16) },
    ];
    assert.deepEqual(defaultLayers(layers, 'b', 16), ['e2', 'b', 'd2']);
  });
});

describe('plots', () => {
  const nonWhite = (img: { data: Uint8ClampedArray }) => {
    let n = 0;
    for (let i = 0; i < img.data.length; i += 4) if (img.data[i] < 250 || img.data[i + 1] < 250 || img.data[i + 2] < 250) n++;
    return n;
  };
  test('ticks and their labels', () => {
    const t = niceTicks(0, 1, 5);
    assert.equal(t.length, 6);
    close(t[0], 0);
    close(t[5], 1, 1e-12);
    assert.equal(tickLabel(0.25, 0.25), '.25');
    assert.equal(tickLabel(-0.5, 0.5), '-.5');
    assert.equal(tickLabel(0.004, 0.002), '.004');
    assert.equal(tickLabel(20, 10), '20');
  });
  test('charts draw something of a sensible size', () => {
    const line = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 'a', color: [255, 0, 0], xs: [0, 1], ys: [0, 1] }] });
    assert.ok(line.width > 300 && line.height > 200 && nonWhite(line) > 500);
    const bars = barChart({
      title: 't',
      rows: [{ label: 'r', values: [0.5, Number.NaN] }],
      series: [
        { label: 'a', color: [0, 0, 255] },
        { label: 'b', color: [0, 255, 0] },
      ],
      xLabel: 'x',
    });
    assert.ok(nonWhite(bars) > 200);
    const m = matrixPlot([1, 0, 0, 1], 2, { title: 'm', colormap: 'turbo', range: [-1, 1] });
    assert.ok(nonWhite(m) > 1000);
    const sc = scatterPlot({
      title: 's',
      xLabel: 'x',
      yLabel: 'y',
      points: [
        { x: 0, y: 0, color: [255, 0, 0] },
        { x: 1, y: 2, color: [0, 0, 255] },
      ],
    });
    assert.ok(nonWhite(sc) > 200);
  });
});
