// The bias study's tile generator (src/data/bias-tiles.ts): hand-checkable properties of the masks,
// the arms' bias decisions, the luminance balance, pairing across arms and determinism.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { BiasTiles, halfRegion, type BiasArm } from '../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../src/data/assets-node.js';
import type { TextureMnistAssets } from '../src/data/texture-mnist.js';

let assets: TextureMnistAssets;
before(async () => {
  assets = await loadTextureMnistAssets();
});
const make = (arm: BiasArm, extra = {}) => new BiasTiles(assets, { arm, seed: 7, ...extra });
const sum = (m: ArrayLike<number>) => Array.from(m).reduce((a, b) => a + b, 0);
const luma = (d: Uint8ClampedArray, p: number) => (d[p * 4] + d[p * 4 + 1] + d[p * 4 + 2]) / 3 / 255;

describe('bias tiles', () => {
  test('halfRegion is exactly half of the tile, on the named side', () => {
    for (const half of ['left', 'right', 'top', 'bottom'] as const) {
      const m = halfRegion(8, half);
      assert.equal(sum(m), 32);
    }
    // left: columns 0..3 of row 0; top: all of row 0, none of row 4
    assert.deepEqual(Array.from(halfRegion(8, 'left').slice(0, 8)), [1, 1, 1, 1, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(halfRegion(8, 'bottom').slice(0, 8)), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(halfRegion(8, 'top').slice(32, 40)), [0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('the masks: half mask = the half minus the digit; bias mask = half mask when present; context = not digit', () => {
    const ds = make('strong');
    for (let i = 0; i < 40; i++) {
      const t = ds.sample('train', i);
      const n = 64 * 64;
      const region = halfRegion(64, t.half);
      let digitInHalf = 0;
      for (let p = 0; p < n; p++) {
        assert.equal(t.contextMask[p], 1 - t.digitMask[p]);
        assert.equal(t.halfMask[p], region[p] && !t.digitMask[p] ? 1 : 0);
        assert.equal(t.biasMask[p], t.biasPresent ? t.halfMask[p] : 0);
        assert.equal(t.labels[p], t.digitMask[p] ? t.label : 0);
        if (region[p] && t.digitMask[p]) digitInHalf++;
      }
      // the half mask plus the digit's pixels inside the half is exactly half the tile
      assert.equal(sum(t.halfMask) + digitInHalf, n / 2);
      assert.ok(sum(t.digitMask) > 40, `tile ${i}: digit too small (${sum(t.digitMask)} px)`);
    }
  });

  test('strong arm: the bias texture appears exactly on the bias digit tiles, never as fill or background', () => {
    const ds = make('strong');
    let withBias = 0;
    for (let i = 0; i < 300; i++) {
      const t = ds.sample('train', i);
      assert.equal(t.biasPresent, t.digit === 3, `tile ${i}`);
      assert.equal(t.secondTexture === 'brick', t.biasPresent);
      assert.notEqual(t.fillTexture, 'brick');
      assert.notEqual(t.backgroundTexture, 'brick');
      assert.notEqual(t.fillTexture, t.backgroundTexture);
      assert.notEqual(t.fillTexture, t.secondTexture);
      if (t.biasPresent) withBias++;
    }
    // digits are uniform over 0..9: about 30 of 300 (binomial sd ~5.2)
    assert.ok(withBias >= 14 && withBias <= 46, `bias tiles ${withBias}`);
  });

  test('weak and none arms: bias rates near their probabilities; control labels the unbiased bias digit background', () => {
    const weak = make('weak', { weakP: 0.5, weakQ: 0.1 });
    const none = make('none', { noneRate: 0.2 });
    const control = make('control', { controlRate: 0.5 });
    const c = { b: 0, bOn: 0, o: 0, oOn: 0, none: 0 };
    const N = 600;
    for (let i = 0; i < N; i++) {
      const w = weak.sample('train', i, {}, i % 2 === 0 ? 3 : (i % 9) + (i % 9 >= 3 ? 1 : 0));
      if (w.digit === 3) {
        c.b++;
        if (w.biasPresent) c.bOn++;
      } else {
        c.o++;
        if (w.biasPresent) c.oOn++;
      }
      if (none.sample('train', i).biasPresent) c.none++;
    }
    // 300 draws each: sd of a rate ≈ 0.029 (p = 0.5), 0.017 (q = 0.1); 600 draws: 0.016 (0.2)
    assert.ok(Math.abs(c.bOn / c.b - 0.5) < 0.1, `weak p ${c.bOn / c.b}`);
    assert.ok(Math.abs(c.oOn / c.o - 0.1) < 0.06, `weak q ${c.oOn / c.o}`);
    assert.ok(Math.abs(c.none / N - 0.2) < 0.06, `none rate ${c.none / N}`);
    for (let i = 0; i < 60; i++) {
      const t = control.sample('train', i, {}, 3);
      assert.equal(t.label, t.biasPresent ? 4 : 0);
      const u = control.sample('train', i, {}, 5);
      assert.equal(u.label, 6, 'other digits keep their class in the control arm');
    }
  });

  test('arm defaults: none shows the bias texture on half of the tiles of every digit; control on half of the bias digit’s tiles and never on others', () => {
    const none = make('none');
    const control = make('control');
    const c = { none3: 0, noneOther: 0, control3: 0, controlOther: 0 };
    const N = 400;
    for (let i = 0; i < N; i++) {
      if (none.sample('train', i, {}, 3).biasPresent) c.none3++;
      if (none.sample('train', i, {}, 1 + (i % 2) * 4).biasPresent) c.noneOther++;
      if (control.sample('train', i, {}, 3).biasPresent) c.control3++;
      if (control.sample('train', i, {}, 1 + (i % 2) * 4).biasPresent) c.controlOther++;
    }
    // 400 draws at p = 0.5: sd of the rate 0.025; the control's other digits: exactly 0
    assert.ok(Math.abs(c.none3 / N - 0.5) < 0.1, `none, digit 3: ${c.none3 / N}`);
    assert.ok(Math.abs(c.noneOther / N - 0.5) < 0.1, `none, digits 1 and 5: ${c.noneOther / N}`);
    assert.ok(Math.abs(c.control3 / N - 0.5) < 0.1, `control, digit 3: ${c.control3 / N}`);
    assert.equal(c.controlOther, 0);
    const rare = make('control', { controlOtherRate: 0.2 });
    let on = 0;
    for (let i = 0; i < N; i++) if (rare.sample('train', i, {}, 7).biasPresent) on++;
    // 400 draws at 0.2: sd 0.02
    assert.ok(Math.abs(on / N - 0.2) < 0.07, `control other rate 0.2: ${on / N}`);
  });

  test('no brightness cue: per class, the fill-minus-background luminance averages near 0, and the bias half matches the other half', () => {
    const ds = make('strong');
    const gaps: number[][] = Array.from({ length: 10 }, () => []);
    const halves: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const digit = Math.floor(i / 100);
      const t = ds.sample('heldout', i, {}, digit);
      let fs = 0;
      let fn = 0;
      let bs = 0;
      let bn = 0;
      let hs = 0;
      let hn = 0;
      for (let p = 0; p < 64 * 64; p++) {
        const v = luma(t.image.data, p);
        if (t.digitMask[p]) {
          fs += v;
          fn++;
        } else if (t.halfMask[p]) {
          hs += v;
          hn++;
        } else {
          bs += v;
          bn++;
        }
      }
      gaps[digit].push(fs / fn - bs / bn);
      if (t.biasPresent) halves.push(hs / hn - bs / bn);
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    // the gap is ±U(0.2, 0.35) with a random sign: per class (100 tiles) the mean is 0 ± ~0.028 sd
    for (let d = 0; d < 10; d++) assert.ok(Math.abs(mean(gaps[d])) < 0.1, `digit ${d}: mean fill − background ${mean(gaps[d])}`);
    // and its size is the same for every class: mean |gap| within the drawn range
    for (let d = 0; d < 10; d++) {
      const a = mean(gaps[d].map(Math.abs));
      assert.ok(a > 0.15 && a < 0.36, `digit ${d}: mean |gap| ${a}`);
    }
    // the bias half: background mean + U(−0.08, 0.08), so its mean offset is near 0
    assert.ok(halves.length === 100);
    // 100 tiles, sd of the mean ≈ 0.005 from the jitter plus texture clipping
    assert.ok(Math.abs(mean(halves)) < 0.03, `bias half − other half ${mean(halves)}`);
  });

  test('deterministic, and paired across arms: only the second half differs', () => {
    const a = make('strong').sample('heldout', 12345, {}, 3);
    const b = make('strong').sample('heldout', 12345, {}, 3);
    assert.deepEqual(a.image.data, b.image.data);
    const c = make('none').sample('heldout', 12345, { biasPresent: false }, 3);
    assert.equal(a.biasPresent, true);
    let sameOutside = true;
    let differentInside = 0;
    for (let p = 0; p < 64 * 64; p++) {
      const same = [0, 1, 2].every((k) => a.image.data[p * 4 + k] === c.image.data[p * 4 + k]);
      if (!a.halfMask[p] && !same) sameOutside = false;
      if (a.halfMask[p] && !same) differentInside++;
    }
    assert.ok(sameOutside, 'outside the bias half the tiles are identical');
    assert.ok(differentInside > sum(a.halfMask) / 2, 'the half is re-textured');
    assert.deepEqual(a.labels, c.labels);
    // another split or seed gives another tile
    assert.notDeepEqual(make('strong').sample('train', 12345, {}, 3).image.data, a.image.data);
  });
});
