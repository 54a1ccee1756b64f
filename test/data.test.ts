import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadTextureMnistAssets } from '../src/data/assets-node.js';
import { Rng, hash32 } from '../src/data/prng.js';
import {
  MNIST_SIZE,
  NUM_CLASSES,
  TextureMnist,
  textureId,
  type TextureMnistAssets,
  type TextureMnistSample,
} from '../src/data/texture-mnist.js';
import { SegGradCamError } from '../src/errors.js';
import { useCpu } from './helpers/setup.js';

let assets: TextureMnistAssets;
before(async () => {
  await useCpu();
  assets = await loadTextureMnistAssets();
});

/** The > 0.5 mask of one placed digit, recomputed independently with plain bilinear sampling. */
function digitMask(s: TextureMnistSample, k: number, size: number): Uint8Array {
  const d = s.digits[k];
  const src = assets.digits[d.digit];
  const off = d.mnistIndex * MNIST_SIZE * MNIST_SIZE;
  const at = (y: number, x: number): number => (y < 0 || x < 0 || y >= MNIST_SIZE || x >= MNIST_SIZE ? 0 : src[off + y * MNIST_SIZE + x]);
  const mask = new Uint8Array(size * size);
  const f = MNIST_SIZE / d.size;
  for (let py = 0; py < size; py++)
    for (let px = 0; px < size; px++) {
      if (px < d.x || py < d.y || px >= d.x + d.size || py >= d.y + d.size) continue;
      const sy = (py - d.y + 0.5) * f - 0.5;
      const sx = (px - d.x + 0.5) * f - 0.5;
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      const v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
      if (v > 0.5 + 1e-6) mask[py * size + px] = 1;
    }
  return mask;
}

describe('PRNG', () => {
  test('is deterministic and roughly uniform', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 2000 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 2000 }, () => b.next()),
    );
    const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
    assert.notEqual(hash32(1, 2, 3), hash32(1, 2, 4));
    assert.notEqual(new Rng(1).next(), new Rng(2).next());
  });
});

describe('TextureMNIST tiles', () => {
  test('same seed + index give identical bytes; another index or seed differs', () => {
    const a = new TextureMnist(assets, { seed: 7 });
    const b = new TextureMnist(assets, { seed: 7 });
    for (const i of [0, 5, 123]) {
      const s = a.sample('train', i);
      const t = b.sample('train', i);
      assert.deepEqual(Buffer.from(s.image.data), Buffer.from(t.image.data));
      assert.deepEqual(s.labels, t.labels);
      assert.deepEqual(s.textureMap, t.textureMap);
      assert.deepEqual(s.digits, t.digits);
    }
    const s0 = Buffer.from(a.sample('train', 0).image.data);
    assert.notDeepEqual(s0, Buffer.from(a.sample('train', 1).image.data));
    assert.notDeepEqual(s0, Buffer.from(new TextureMnist(assets, { seed: 8 }).sample('train', 0).image.data));
    assert.notDeepEqual(s0, Buffer.from(a.sample('heldout', 0).image.data));
  });

  test('image is RGBA of the requested size; the size option scales the tile', () => {
    const ds = new TextureMnist(assets, { size: 32 });
    const s = ds.sample('train', 3);
    assert.equal(s.image.width, 32);
    assert.equal(s.image.height, 32);
    assert.equal(s.image.data.length, 32 * 32 * 4);
    assert.equal(s.labels.length, 32 * 32);
    for (let i = 3; i < s.image.data.length; i += 4) assert.equal(s.image.data[i], 255);
  });

  test('labels are exactly where the digits are (later digits overwrite earlier ones)', () => {
    const size = 64;
    const ds = new TextureMnist(assets, { seed: 3 });
    for (let i = 0; i < 40; i++) {
      const s = ds.sample('train', i);
      assert.ok(s.digits.length >= 1 && s.digits.length <= 3);
      const expected = new Uint8Array(size * size);
      s.digits.forEach((d, k) => {
        const m = digitMask(s, k, size);
        for (let p = 0; p < m.length; p++) if (m[p]) expected[p] = d.digit + 1;
      });
      let diff = 0;
      for (let p = 0; p < expected.length; p++) if (expected[p] !== s.labels[p]) diff++;
      assert.ok(diff <= 2, `tile ${i}: ${diff} label pixels differ from the recomputed digit masks`); // ties at exactly 0.5
      for (let p = 0; p < s.labels.length; p++) {
        assert.equal(s.backgroundMask[p], s.labels[p] === 0 ? 1 : 0);
        if (s.labels[p] === 0) assert.equal(s.textureMap[p], textureId(s.backgroundTexture));
      }
      // every digit keeps most of its ink (little overlap)
      s.digits.forEach((d, k) => {
        const m = digitMask(s, k, size);
        let ink = 0;
        let kept = 0;
        for (let p = 0; p < m.length; p++) {
          ink += m[p];
          if (m[p] && s.labels[p] === d.digit + 1) kept++;
        }
        assert.ok(ink > 20, `digit ${k} of tile ${i} has only ${ink} ink pixels`);
        assert.ok(kept / ink > 0.6, `digit ${k} of tile ${i} keeps ${kept}/${ink} pixels`);
      });
    }
  });

  test('class counts are plausible: every class appears, digits cover a few % of the pixels', () => {
    const ds = new TextureMnist(assets, { seed: 1 });
    const counts = new Array<number>(NUM_CLASSES).fill(0);
    const tiles = 200;
    for (let i = 0; i < tiles; i++) for (const l of ds.sample('train', i).labels) counts[l]++;
    const total = tiles * 64 * 64;
    const bg = counts[0] / total;
    assert.ok(bg > 0.75 && bg < 0.97, `background share ${bg}`);
    for (let c = 1; c < NUM_CLASSES; c++) assert.ok(counts[c] / total > 0.002, `class ${c} share ${counts[c] / total}`);
  });

  test('digit fills differ from the background texture; the bias texture never fills a digit', () => {
    const ds = new TextureMnist(assets, { seed: 2, biasStrength: 1 });
    for (let i = 0; i < 200; i++) {
      const s = ds.sample('train', i);
      for (const d of s.digits) {
        assert.notEqual(d.texture, s.backgroundTexture);
        assert.notEqual(d.texture, ds.options.biasTexture);
      }
    }
  });
});

describe('planted context bias', () => {
  test('strength 1: exactly the tiles with the bias digit have the bias background', () => {
    const ds = new TextureMnist(assets, { seed: 4, biasDigit: 3, biasTexture: 'brick', biasStrength: 1 });
    const bias = textureId('brick');
    let withDigit = 0;
    for (let i = 0; i < 300; i++) {
      const s = ds.sample('train', i);
      const has = s.digits.some((d) => d.digit === 3);
      assert.equal(s.hasBiasDigit, has);
      assert.equal(s.biasBackground, has, `tile ${i}`);
      assert.equal(s.backgroundTexture === 'brick', has);
      if (has) withDigit++;
      const onBias = s.textureMap.some((t) => t === bias);
      assert.equal(onBias, has);
      const biasPixels = s.biasMask.reduce((a, b) => a + b, 0);
      assert.equal(biasPixels > 0, has);
      for (let p = 0; p < s.labels.length; p++) if (s.biasMask[p]) assert.equal(s.labels[p], 0);
    }
    assert.ok(withDigit > 30 && withDigit < 120, `${withDigit} tiles with a 3`);
  });

  test('strength 0: the bias texture is never used (default), or uniform with biasTextureAtZero', () => {
    const ds = new TextureMnist(assets, { seed: 4, biasStrength: 0 });
    const bias = ds.biasTextureId;
    for (let i = 0; i < 300; i++) {
      const s = ds.sample('train', i);
      assert.equal(s.biasBackground, false);
      assert.ok(!s.textureMap.includes(bias), `tile ${i} uses the bias texture`);
      assert.ok(!s.biasMask.includes(1));
    }
    const uni = new TextureMnist(assets, { seed: 4, biasStrength: 0, biasTextureAtZero: 'uniform' });
    let withDigit = 0;
    let without = 0;
    for (let i = 0; i < 600; i++) {
      const s = uni.sample('train', i);
      assert.equal(s.biasBackground, false);
      if (s.backgroundTexture === 'brick') {
        if (s.hasBiasDigit) withDigit++;
        else without++;
      }
    }
    assert.ok(without > 20 && withDigit > 0, `uniform: ${without} without, ${withDigit} with the bias digit`);
  });

  test('strength 0.5: about half of the bias-digit tiles, and never another tile', () => {
    const ds = new TextureMnist(assets, { seed: 5, biasDigit: 7, biasTexture: 'dots', biasStrength: 0.5 });
    let has = 0;
    let biased = 0;
    for (let i = 0; i < 600; i++) {
      const s = ds.sample('train', i);
      if (!s.hasBiasDigit) assert.equal(s.backgroundTexture === 'dots', false);
      if (s.hasBiasDigit) {
        has++;
        if (s.biasBackground) biased++;
      }
    }
    assert.ok(Math.abs(biased / has - 0.5) < 0.12, `${biased}/${has}`);
  });

  test('bad options are usage errors', () => {
    assert.throws(() => new TextureMnist(assets, { biasStrength: 1.5 }), SegGradCamError);
    assert.throws(() => new TextureMnist(assets, { biasDigit: 10 }), SegGradCamError);
    assert.throws(() => new TextureMnist(assets, { biasTexture: 'plaid' as never }), SegGradCamError);
  });
});

describe('train / held-out split', () => {
  test('MNIST instances are disjoint and each split only uses its own', () => {
    const ds = new TextureMnist(assets, { seed: 6 });
    for (let k = 0; k < 10; k++) {
      const [a, b] = ds.mnistRange('train', k);
      const [c, d] = ds.mnistRange('heldout', k);
      assert.ok(a === 0 && b <= c && c < d, `digit ${k}: train [${a},${b}) held-out [${c},${d})`);
    }
    const seen = { train: new Set<string>(), heldout: new Set<string>() };
    for (const split of ['train', 'heldout'] as const)
      for (let i = 0; i < 300; i++)
        for (const dg of ds.sample(split, i).digits) {
          const [lo, hi] = ds.mnistRange(split, dg.digit);
          assert.ok(dg.mnistIndex >= lo && dg.mnistIndex < hi);
          seen[split].add(`${dg.digit}:${dg.mnistIndex}`);
        }
    for (const key of seen.heldout) assert.ok(!seen.train.has(key), `instance ${key} in both splits`);
  });
});

describe('batches', () => {
  test('tensors [N,H,W,3] in 0..1 and labels [N,H,W] int32 or one-hot', () => {
    const ds = new TextureMnist(assets, { size: 32, seed: 9 });
    const { x, y } = ds.batch('train', [0, 1, 2]);
    assert.deepEqual(x.shape, [3, 32, 32, 3]);
    assert.deepEqual(y.shape, [3, 32, 32]);
    assert.equal(y.dtype, 'int32');
    const xv = x.dataSync();
    assert.ok(xv.every((v) => v >= 0 && v <= 1));
    assert.deepEqual(Array.from(y.dataSync().slice(0, 1024)), Array.from(ds.sample('train', 0).labels));
    assert.equal(xv[0], Math.fround(ds.sample('train', 0).image.data[0] / 255));
    const oh = ds.batch('train', [0, 1, 2], { oneHot: true });
    assert.deepEqual(oh.y.shape, [3, 32, 32, NUM_CLASSES]);
    const sums = tf.sum(oh.y, -1).dataSync();
    assert.ok(sums.every((v) => v === 1));
    const f = ds.arrays('train', [0], [true]);
    const s = ds.sample('train', 0);
    assert.equal(f.y[5], s.labels[31 - 5]);
    tf.dispose([x, y, oh.x, oh.y]);
  });
});
