import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import { regionObjective } from '../src/region/objective.js';
import * as R from '../src/region/region.js';

/** A 6x4 output grid for an image of the same size: region masks can be written down by hand. */
const W = 6;
const H = 4;
// prettier-ignore
const labels = Int32Array.from([
  0, 0, 2, 2, 0, 0,
  0, 1, 1, 0, 0, 2,
  0, 1, 0, 0, 2, 2,
  0, 0, 0, 0, 2, 0,
]);
const ctx = (classIndex = 2, scale = 1): R.RegionContext => ({
  imageWidth: W * scale,
  imageHeight: H * scale,
  outWidth: W,
  outHeight: H,
  labels,
  classIndex,
});
const grid = (rows: string[]) => Uint8Array.from(rows.join('').split('').map(Number));

function assertRegionError(fn: () => unknown, code: string, text: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof SegGradCamError && err.code === code && text.test(err.message));
}

describe('regions against hand-built masks', () => {
  test('pixel', () => {
    assert.deepEqual(R.regionToMask(R.pixel(4, 2), ctx()), grid(['000000', '000000', '000010', '000000']));
  });
  test('pixels', () => {
    assert.deepEqual(
      R.regionToMask(
        R.pixels([
          [0, 0],
          [5, 3],
          [0, 0],
        ]),
        ctx(),
      ),
      grid(['100000', '000000', '000000', '000001']),
    );
  });
  test('box (corners included)', () => {
    assert.deepEqual(R.regionToMask(R.box(1, 1, 3, 2), ctx()), grid(['000000', '011100', '011100', '000000']));
  });
  test('mask', () => {
    const m = grid(['000000', '001100', '000000', '100000']);
    assert.deepEqual(R.regionToMask(R.mask(W, H, m), ctx()), m);
  });
  test('all pixels of a class', () => {
    assert.deepEqual(R.regionToMask(R.classRegion(), ctx(2)), grid(['001100', '000001', '000011', '000010']));
  });
  test('object: the connected component under the pixel (4-neighbours)', () => {
    assert.deepEqual(R.regionToMask(R.object(5, 2), ctx()), grid(['000000', '000001', '000011', '000010']));
    assert.deepEqual(R.regionToMask(R.object(2, 0), ctx()), grid(['001100', '000000', '000000', '000000']));
    assert.deepEqual(R.regionToMask(R.object(1, 2), ctx()), grid(['000000', '011000', '010000', '000000']));
  });
  test('whole image', () => {
    assert.deepEqual(R.regionToMask(R.whole(), ctx()), new Uint8Array(W * H).fill(1));
  });
  test('an image twice the output size maps 2x2 image pixels onto one cell', () => {
    assert.deepEqual(R.regionToMask(R.pixel(9, 5), ctx(2, 2)), grid(['000000', '000000', '000010', '000000']));
    assert.deepEqual(R.regionToMask(R.box(0, 0, 3, 1), ctx(2, 2)), grid(['110000', '000000', '000000', '000000']));
  });
  test('an image smaller than the output covers every cell of a selected pixel', () => {
    const c: R.RegionContext = { imageWidth: 3, imageHeight: 2, outWidth: 6, outHeight: 4, labels, classIndex: 0 };
    assert.deepEqual(R.regionToMask(R.pixel(1, 1), c), grid(['000000', '000000', '001100', '001100']));
  });
});

test('a box gives the same cells as the same pixels given one by one (odd image and output sizes)', () => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
  for (const [iw, ih, ow, oh] of [
    [37, 23, 11, 7],
    [256, 128, 128, 64],
    [100, 60, 100, 60],
    [9, 9, 4, 3],
    [13, 5, 20, 9],
  ]) {
    for (let t = 0; t < 20; t++) {
      const [x0, y0] = [rand(iw), rand(ih)];
      const [x1, y1] = [x0 + rand(iw - x0), y0 + rand(ih - y0)];
      const points: Array<[number, number]> = [];
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) points.push([x, y]);
      const c = { imageWidth: iw, imageHeight: ih, outWidth: ow, outHeight: oh, labels: new Int32Array(ow * oh), classIndex: 0 };
      assert.deepEqual(
        R.regionToMask(R.box(x0, y0, x1, y1), c),
        R.regionToMask(R.pixels(points), c),
        `box ${x0},${y0},${x1},${y1} on ${iw}x${ih} → ${ow}x${oh}`,
      );
    }
  }
});

describe('region errors', () => {
  test('empty regions are errors', () => {
    assertRegionError(() => R.regionToMask(R.mask(W, H, new Uint8Array(W * H)), ctx()), 'region', /empty region/);
    assertRegionError(() => R.regionToMask(R.pixels([]), ctx()), 'region', /empty/);
    assertRegionError(() => R.regionToMask(R.classRegion(), ctx(7)), 'region', /no pixel is predicted as class 7/);
    assertRegionError(() => R.regionToMask(R.box(3, 1, 1, 2), ctx()), 'region', /empty/);
  });
  test('pixels outside the image name the pixel and the image size', () => {
    assertRegionError(() => R.regionToMask(R.pixel(6, 0), ctx()), 'pixel', /\(6, 0\) is outside the 6x4 image/);
    assertRegionError(() => R.regionToMask(R.object(-1, 2), ctx()), 'pixel', /outside/);
    assertRegionError(() => R.regionToMask(R.box(0, 0, 9, 9), ctx()), 'pixel', /box corner/);
  });
  test('a mask of the wrong size is a shape error', () => {
    assertRegionError(() => R.regionToMask(R.mask(3, 3, new Uint8Array(9).fill(1)), ctx()), 'shape', /3x3.*6x4/);
  });
});

describe('objective S = Σ_M y^c', () => {
  const out = { kind: 'map' as const, height: 1, width: 3, channels: 3, activation: 'none' as const };
  test('multi-class: one-hot of c on the pixels of M', () => {
    const o = regionObjective(out, 2, Uint8Array.from([1, 0, 1]), 'logits');
    assert.deepEqual(Array.from(o.weights), [0, 0, 1, 0, 0, 0, 0, 0, 1]);
  });
  test('binary sigmoid model: class 1 is the channel, class 0 its negation', () => {
    const bin = { ...out, channels: 1 };
    assert.deepEqual(Array.from(regionObjective(bin, 1, Uint8Array.from([1, 1, 0]), 'logits').weights), [1, 1, 0]);
    const neg = regionObjective(bin, 0, Uint8Array.from([1, 1, 0]), 'probability');
    assert.deepEqual(Array.from(neg.weights), [-1, -1, 0]);
    // Σ_M (1 − σ(y)) = −Σ_M σ(y) + |M|
    assert.equal(neg.offset, 2);
  });
});
