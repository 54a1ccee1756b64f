// ROAD (Rong et al. 2022) on cases with known answers: the patch grid and orders by hand, the
// step images against the imputation itself, and the whole protocol on a model whose score is a
// sum of its input over M (an oracle map must beat its negation; a model that cannot see the
// context gives exactly no context effect; LeRF of the oracle keeps S until M goes).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Explainer } from '../src/explain.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { mulberry32 } from '../src/methods/random.js';
import { noisyLinearImpute } from '../src/eval/road.js';
import { patchGrid, patchOrder, patchScores, removalCounts, roadImages } from '../src/eval/road-order.js';
import type { ProtocolTile } from '../src/eval/protocol/attribution.js';
import { roadCost, runRoad } from '../src/eval/protocol/road.js';
import { roadReport } from '../src/eval/protocol/road-report.js';
import { useCpu } from './helpers/setup.js';
import { pixelLinear } from './helpers/method-models.js';

const close = (a: number, b: number, tol = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

describe('ROAD patches and orders', () => {
  test('a 5x4 grid of 2-pixel patches: edge patches are smaller; a removable mask drops pixels and empty patches', () => {
    const g = patchGrid(5, 4, 2);
    assert.equal(g.length, 6);
    assert.deepEqual(Array.from(g[0]), [0, 1, 5, 6]);
    assert.deepEqual(Array.from(g[2]), [4, 9], 'the right edge patch is one column wide');
    const removable = new Uint8Array(20).fill(1);
    for (const p of [0, 1, 5, 6, 2]) removable[p] = 0;
    const c = patchGrid(5, 4, 2, removable);
    assert.equal(c.length, 5, 'the first patch has no removable pixel');
    assert.deepEqual(Array.from(c[0]), [3, 7, 8]);
    assert.throws(() => patchGrid(5, 4, 0), /patch size/);
  });
  test('patch scores are sums; MoRF descending, LeRF ascending, ties in a seeded order', () => {
    const map = [1, 2, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    const g = patchGrid(4, 4, 2);
    const s = patchScores(map, g);
    assert.deepEqual(Array.from(s), [1 + 2 + 3 + 3, 0, 0, 5]);
    assert.deepEqual(Array.from(patchOrder(s, 'morf', mulberry32(1))).slice(0, 2), [0, 3]);
    assert.deepEqual(Array.from(patchOrder(s, 'lerf', mulberry32(1))).slice(2), [3, 0]);
    const ties = patchOrder([0, 0, 0, 0, 0, 0], 'morf', mulberry32(5));
    assert.deepEqual([...ties].sort(), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(Array.from(patchOrder([0, 0, 0, 0, 0, 0], 'morf', mulberry32(5))), Array.from(ties), 'seeded');
    assert.deepEqual(removalCounts(16, 4), [0, 4, 8, 12, 16]);
    assert.deepEqual(removalCounts(3, 2), [0, 2, 3]);
  });
  test('the step images are the imputation of the cumulative removal masks', () => {
    const W = 4;
    const input = Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 5);
    const g = patchGrid(W, W, 2);
    const imgs = roadImages(input, W, W, 1, g, Int32Array.from([2, 0, 3, 1]), 2, 0, () => 0);
    const first = new Uint8Array(16);
    for (const p of [...g[2], ...g[0]]) first[p] = 1;
    assert.deepEqual(Array.from(imgs.slice(0, 16)), Array.from(noisyLinearImpute(input, W, W, 1, first, { noise: 0 })));
    // step 2 of 2: everything removed, nothing kept → 0 (the kept mean of no pixel)
    assert.deepEqual(Array.from(imgs.slice(16)), new Array(16).fill(0));
  });
});

describe('the ROAD protocol', () => {
  before(useCpu);
  // logit 0 = R + G + B per pixel, logit 1 = 0: S/|M| = the mean over M of the input's channel sum.
  const size = 8;
  const tiles: ProtocolTile[] = Array.from({ length: 6 }, (_, t) => {
    const region = new Uint8Array(size * size);
    for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) region[y * size + x] = 1; // 4 patches of 2x2
    // a textured image, brighter in M than around it (removing M lowers S)
    const data = new Uint8ClampedArray(size * size * 4);
    for (let p = 0; p < size * size; p++) {
      const v = ((p * 37 + t * 101) % 100) + (region[p] ? 155 : 0);
      data.set([v, (v * 7) % 101, v, 255], p * 4);
    }
    return { id: t, image: { width: size, height: size, data }, region, classId: 0 };
  });
  // The oracle: each pixel's contribution to S (its channel sum inside M, 0 outside); its negation
  // ranks M last; a flat map orders every patch by the seeded tie-break.
  const contribution = (tile: ProtocolTile) =>
    Float32Array.from({ length: size * size }, (_, p) =>
      tile.region[p] ? (tile.image.data[p * 4] + tile.image.data[p * 4 + 1] + tile.image.data[p * 4 + 2]) / 255 : 0,
    );
  const conditions = [
    { label: 'oracle', attribute: contribution },
    { label: 'flat', attribute: () => new Float32Array(size * size).fill(1) },
    { label: 'negated', attribute: (t: ProtocolTile) => contribution(t).map((v) => -v) },
  ];

  test('curves by hand, the oracle beats its negation, no context effect on a model blind to context; no tensor leaks', async () => {
    const model = pixelLinear(
      size,
      [
        [1, 0],
        [1, 0],
        [1, 0],
      ],
      [0, 0],
    );
    const explainer = new Explainer(new LayersModelAdapter(model));
    const before = tf.memory().numTensors;
    let scored = 0;
    const scores = explainer.adapter.scores.bind(explainer.adapter);
    explainer.adapter.scores = (x, o) => ((scored += x.shape[0]), scores(x, o));
    const r = await runRoad(explainer, tiles, conditions, { patchSize: 2, steps: 4, noise: 0, randomOrders: 3, resamples: 500 });
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    // per tile: S0, then 2 variants × (3 random + 2 × 3 conditions) × 4 steps
    assert.equal(scored, 6 * (1 + 2 * (3 + 6) * 4));
    assert.equal(scored, roadCost(6, 3, { steps: 4, randomOrders: 3 }).images);
    const full = r.variants.find((v) => v.variant === 'full')!;
    const ctx = r.variants.find((v) => v.variant === 'context')!;
    assert.deepEqual(full.fractions, [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(full.patches, new Array(6).fill(16));
    assert.deepEqual(ctx.patches, new Array(6).fill(12), 'M (4 patches) is never removed');
    const [oracle, flat, negated] = full.conditions;
    for (let t = 0; t < tiles.length; t++) {
      // S0 = mean over M of R + G + B (the definition, from the image bytes)
      let s0 = 0;
      for (let p = 0; p < size * size; p++) if (tiles[t].region[p]) s0 += contribution(tiles[t])[p] / 16;
      close(r.baseline[t], s0, 1e-5, 'S0');
      // LeRF of the oracle removes the 12 zero patches (3 steps) before M: S stays S0, then 0 (nothing kept)
      const l = oracle.tiles[t].lerf;
      [s0, s0, s0, s0, 0].forEach((v, j) => close(l[j], v, 1e-5, `oracle LeRF step ${j}`));
      close(oracle.tiles[t].lerfArea, (s0 / 2 + 3 * s0) / 4, 1e-5);
      // MoRF of the negation is the same path (M last)
      negated.tiles[t].morf.forEach((v, j) => close(v, l[j], 1e-5));
      // MoRF of the oracle: M is gone after the first step, S is the imputed values' mean
      const removed = new Uint8Array(size * size);
      removed.set(tiles[t].region);
      const x = Float32Array.from({ length: size * size * 3 }, (_, i) => tiles[t].image.data[Math.floor(i / 3) * 4 + (i % 3)] / 255);
      const imputed = noisyLinearImpute(x, size, size, 3, removed, { noise: 0 });
      let s1 = 0;
      for (let p = 0; p < size * size; p++) if (removed[p]) s1 += (imputed[p * 3] + imputed[p * 3 + 1] + imputed[p * 3 + 2]) / 16;
      close(oracle.tiles[t].morf[1], s1, 1e-5, 'oracle MoRF step 1');
      // the context variant: S depends on M only, so every curve is flat at S0
      for (const c of ctx.conditions) for (const v of [...c.tiles[t].morf, ...c.tiles[t].lerf]) close(v, s0, 1e-5, `${c.label} context`);
      for (const v of ctx.random.tiles[t].curves.flat()) close(v, s0, 1e-5);
    }
    assert.ok(oracle.morfArea < flat.morfArea && flat.morfArea < negated.morfArea, 'MoRF: oracle < flat < negated');
    assert.ok(oracle.lerfArea > flat.lerfArea && flat.lerfArea > negated.lerfArea, 'LeRF: oracle > flat > negated');
    assert.deepEqual(full.kendall.morfRanking, ['oracle', 'flat', 'negated']);
    assert.equal(full.kendall.estimate, 1);
    const gap = full.vsRandom.find((c) => c.a === 'oracle' && c.measure === 'gap')!;
    assert.ok(gap.low > 0, `oracle's LeRF − MoRF beats random: [${gap.low}, ${gap.high}]`);
    const pair = full.pairs.find((c) => c.a === 'oracle' && c.b === 'negated' && c.measure === 'morf')!;
    assert.ok(pair.high < 0, 'the oracle removes S faster than its negation on every resample');
    for (const c of ctx.vsRandom)
      assert.ok(Math.abs(c.estimate) < 1e-5 && Math.abs(c.low) < 1e-5 && Math.abs(c.high) < 1e-5, `${c.a} ${c.measure}`);
    // empty maps are counted: none here
    assert.deepEqual(
      full.conditions.map((c) => c.empty),
      [0, 0, 0],
    );
    const rep = roadReport(r, { figure: 'x.png' });
    assert.match(rep.markdown, /Kendall τ-b between them: \*\*1\.000\*\*/);
    assert.ok(rep.images['x.png'].length > 1000);
    explainer.dispose();
  });

  test('bad input is a typed error: wrong tile size, empty M, duplicate labels', async () => {
    const explainer = new Explainer(
      new LayersModelAdapter(
        pixelLinear(
          size,
          [[1], [1], [1]].map((r) => [...r, 0]),
          [0, 0],
        ),
      ),
    );
    const big = { ...tiles[0], image: { width: 4, height: 4, data: new Uint8ClampedArray(64) } };
    await assert.rejects(runRoad(explainer, [big], conditions), /the model takes 8x8/);
    await assert.rejects(runRoad(explainer, [{ ...tiles[0], region: new Uint8Array(64) }], conditions), /M is empty/);
    await assert.rejects(runRoad(explainer, tiles, [conditions[0], conditions[0]]), /share the label/);
    await assert.rejects(runRoad(explainer, tiles, conditions, { variants: [] }), /variants/);
    explainer.dispose();
  });
});
