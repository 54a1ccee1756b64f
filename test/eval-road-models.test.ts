// ROAD pooled over replicated models (issue 15, part 7): the two-level bootstrap over models and
// tiles, paired across conditions; hand-computed means, differences and Kendall's τ.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../src/data/prng.js';
import { concatRoad, pairedTwoLevel, pooledDifference, pooledMean, poolRoad } from '../src/eval/protocol/road-models.js';
import type { RoadResult } from '../src/eval/protocol/road.js';

describe('the paired two-level bootstrap', () => {
  test('the estimate is the mean over models of the per-model tile means, NaN left out', () => {
    const r = pooledMean([
      [1, 2, Number.NaN],
      [3, 5, 7],
    ]);
    assert.equal(r.estimate, (1.5 + 5) / 2);
    assert.ok(r.low <= r.estimate && r.estimate <= r.high);
  });

  test('conditions are paired by model and tile: a constant shift has a zero-width interval', () => {
    const rng = new Rng(3);
    const a = Array.from({ length: 3 }, () => Array.from({ length: 50 }, () => 10 * rng.next()));
    const b = a.map((row) => row.map((v) => v + 0.5));
    const d = pooledDifference(b, a, { resamples: 400 });
    for (const v of [d.estimate, d.low, d.high]) assert.ok(Math.abs(v - 0.5) < 1e-12, `${v}`);
    // the mean of a alone varies with the draw
    const m = pooledMean(a, { resamples: 400 });
    assert.ok(m.high - m.low > 0.5, `${m.low} ${m.high}`);
  });

  test('covers the true mean at about the nominal rate (one model, 40 normal tiles)', () => {
    const rng = new Rng(11);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    let covered = 0;
    const reps = 300;
    for (let r = 0; r < reps; r++) {
      const row = Array.from({ length: 40 }, () => 2 + normal());
      const ci = pooledMean([row], { resamples: 400, seed: r });
      if (ci.low <= 2 && 2 <= ci.high) covered++;
    }
    const rate = covered / reps;
    assert.ok(rate > 0.88 && rate < 0.99, `coverage ${rate}`);
  });

  test('items measured on different models or tiles are refused', () => {
    assert.throws(() => pairedTwoLevel([[[1, 2]], [[1, 2, 3]]], ([x]) => x), /same tiles/);
    assert.throws(() => pairedTwoLevel([[[1]], [[1], [2]]], ([x]) => x), /same models/);
  });
});

/** A RoadResult with one 'full' variant: areas given per condition, model-independent shapes. */
function fake(labels: string[], morf: number[][], lerf: number[][], random: number[]): RoadResult {
  const tiles = random.map((_, t) => t);
  return {
    tiles,
    variants: [
      {
        variant: 'full',
        fractions: [0, 1],
        conditions: labels.map((label, c) => ({
          label,
          empty: c,
          tiles: tiles.map((t) => ({ tile: t, morf: [0, 0], lerf: [0, 0], morfArea: morf[c][t], lerfArea: lerf[c][t] })),
          meanMorf: [1, morf[c].reduce((x, y) => x + y, 0) / morf[c].length],
          meanLerf: [1, lerf[c][0]],
        })),
        random: { tiles: tiles.map((t) => ({ tile: t, curves: [], area: random[t] })), meanCurve: [1, random[0]] },
      },
    ],
  } as unknown as RoadResult;
}

describe('poolRoad', () => {
  test('pooled areas, differences to random, empty counts and Kendall τ by hand', () => {
    const labels = ['A', 'B', 'C'];
    // MoRF ascending: A (1) < B (2) < C (3); LeRF descending: A (9) > C (8) > B (7): one discordant pair of 3
    const m1 = fake(
      labels,
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
      [
        [9, 9],
        [7, 7],
        [8, 8],
      ],
      [5, 5],
    );
    const m2 = fake(
      labels,
      [
        [1, 3],
        [2, 2],
        [3, 3],
      ],
      [
        [9, 9],
        [7, 7],
        [8, 8],
      ],
      [4, 6],
    );
    const p = poolRoad([m1, m2], { resamples: 300 });
    const v = p.variants[0];
    assert.equal(p.models, 2);
    assert.equal(p.tiles, 2);
    // A's MoRF: model 1 mean 1, model 2 mean 2 → 1.5; random: 5 and 5 → 5
    assert.equal(v.conditions[0].morf.estimate, 1.5);
    assert.equal(v.random.area.estimate, 5);
    assert.equal(v.conditions[0].morfVsRandom.estimate, -3.5);
    assert.equal(v.conditions[1].lerfVsRandom.estimate, 2);
    assert.equal(v.conditions[0].gap.estimate, 9 - 1.5);
    assert.deepEqual(v.conditions[0].perModel, [
      { morf: 1, lerf: 9 },
      { morf: 2, lerf: 9 },
    ]);
    assert.deepEqual(
      v.conditions.map((c) => c.empty),
      [0, 2, 4],
    );
    assert.ok(Math.abs(v.kendall.estimate - 1 / 3) < 1e-12, `${v.kendall.estimate}`);
    assert.deepEqual(v.kendall.morfRanking, ['A', 'B', 'C']);
    assert.deepEqual(v.kendall.lerfRanking, ['A', 'C', 'B']);
    // model 2: A's MoRF mean is 2, tied with B: τ-b = (1 concordant − 1 discordant) / … = 0
    assert.deepEqual(
      v.kendallPerModel.map((t) => Math.round(t * 3)),
      [1, 0],
    );
    // mean curves: model 1 ends at 1, model 2 at 2
    assert.deepEqual(v.conditions[0].meanMorf, [1, 1.5]);
  });

  test('models run on other tiles or conditions are refused', () => {
    const a = fake(['A', 'B'], [[1], [2]], [[1], [2]], [1]);
    const b = fake(['A', 'C'], [[1], [2]], [[1], [2]], [1]);
    const c = fake(
      ['A', 'B'],
      [
        [1, 1],
        [2, 2],
      ],
      [
        [1, 1],
        [2, 2],
      ],
      [1, 1],
    );
    assert.throws(() => poolRoad([a, b]), /same conditions/);
    assert.throws(() => poolRoad([a, c]), /same tiles/);
  });
});

describe('concatRoad', () => {
  test('chunks of tiles join into one result: tiles, areas and mean curves over every tile', () => {
    const a = fake(
      ['A', 'B'],
      [
        [1, 3],
        [2, 2],
      ],
      [
        [5, 5],
        [6, 6],
      ],
      [4, 4],
    );
    const b = fake(['A', 'B'], [[5], [2]], [[5], [9]], [1]);
    // tile ids must differ: shift b's
    b.tiles = [7];
    for (const c of b.variants[0].conditions) c.tiles[0].tile = 7;
    for (const c of [...a.variants[0].conditions, ...b.variants[0].conditions]) for (const t of c.tiles) t.morf = [1, t.morfArea];
    a.variants[0].random.tiles.forEach((t) => (t.curves = [[1, t.area]]));
    b.variants[0].random.tiles.forEach((t) => (t.curves = [[1, t.area]]));
    const j = concatRoad([a, b]);
    assert.deepEqual(j.tiles, [0, 1, 7]);
    const A = j.variants[0].conditions[0];
    assert.equal(A.morfArea, 3);
    assert.deepEqual(A.meanMorf, [1, 3]);
    assert.equal(A.empty, 0);
    assert.equal(j.variants[0].conditions[1].empty, 2);
    assert.equal(j.variants[0].conditions[1].lerfArea, 7);
    assert.equal(j.variants[0].random.area, 3);
    assert.deepEqual(j.variants[0].random.meanCurve, [1, 3]);
    const p = poolRoad([j]);
    assert.equal(p.variants[0].conditions[0].morfVsRandom.estimate, 0);
  });
});
