import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createImage, type RgbaImage } from '../src/image.js';
import {
  COLORMAPS,
  classLegendEntries,
  colormap,
  colormapLut,
  contourMask,
  defaultPalette,
  drawContour,
  drawMarker,
  drawText,
  fitText,
  heatmapImage,
  labelImage,
  lutIndex,
  measureText,
  overlayHeatmap,
  renderFigure,
  resizeImageBilinear,
  resizeImageNearest,
  resizeLabelsNearest,
  resizeMapBilinear,
} from '../src/render/index.js';
import { maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

const hex = (s: string) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

function pixel(img: RgbaImage, x: number, y: number): number[] {
  const p = (y * img.width + x) * 4;
  return Array.from(img.data.subarray(p, p + 4));
}

function solid(w: number, h: number, rgba: number[]): RgbaImage {
  const img = createImage(w, h);
  for (let i = 0; i < w * h; i++) img.data.set(rgba, i * 4);
  return img;
}

describe('colormap', () => {
  test('viridis and inferno match matplotlib / d3 reference values', () => {
    assert.deepEqual(colormap('viridis', 0), hex('#440154'));
    assert.deepEqual(colormap('viridis', 1), hex('#fde725'));
    assert.deepEqual(colormap('viridis', 0.5), hex('#21918c'));
    assert.deepEqual(colormap('inferno', 0), hex('#000004'));
    assert.deepEqual(colormap('inferno', 1), hex('#fcffa4'));
  });

  test('turbo endpoints are those of d3 (polynomial approximation of Google turbo)', () => {
    assert.deepEqual(colormap('turbo', 0), hex('#23171b'));
    assert.deepEqual(colormap('turbo', 1), hex('#900c00'));
  });

  test('jet is MATLAB jet: dark blue, blue, cyan, green-ish, yellow, red, dark red', () => {
    assert.deepEqual(colormap('jet', 0), [0, 0, 128]);
    assert.deepEqual(colormap('jet', 0.125), [0, 0, 255]);
    assert.deepEqual(colormap('jet', 0.375), [0, 255, 255]);
    assert.deepEqual(colormap('jet', 0.5), [128, 255, 128]);
    assert.deepEqual(colormap('jet', 0.625), [255, 255, 0]);
    assert.deepEqual(colormap('jet', 0.875), [255, 0, 0]);
    assert.deepEqual(colormap('jet', 1), [128, 0, 0]);
  });

  test('gray, clamping and NaN', () => {
    assert.deepEqual(colormap('gray', 0), [0, 0, 0]);
    assert.deepEqual(colormap('gray', 1), [255, 255, 255]);
    for (const name of COLORMAPS) {
      assert.deepEqual(colormap(name, NaN), colormap(name, 0), name);
      assert.deepEqual(colormap(name, -3), colormap(name, 0), name);
      assert.deepEqual(colormap(name, 7), colormap(name, 1), name);
    }
  });

  test('the 256-entry LUT agrees with colormap() and lutIndex clamps', () => {
    for (const name of COLORMAPS) {
      const lut = colormapLut(name);
      assert.equal(lut.length, 768);
      for (const i of [0, 1, 100, 128, 254, 255]) assert.deepEqual(Array.from(lut.subarray(i * 3, i * 3 + 3)), colormap(name, i / 255));
    }
    assert.equal(lutIndex(NaN), 0);
    assert.equal(lutIndex(-1), 0);
    assert.equal(lutIndex(0.5), 128);
    assert.equal(lutIndex(2), 255);
  });
});

describe('resize', () => {
  before(useCpu);

  test('bilinear 2x2 → 4x4 (half-pixel centres) equals the hand-computed values', () => {
    // Source samples at 0, .25, .75, 1 along each axis (clamped at the borders).
    const out = resizeMapBilinear(Float32Array.from([0, 1, 2, 3]), 2, 2, 4, 4);
    assert.deepEqual(Array.from(out), [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  test('bilinear matches tf.image.resizeBilinear(halfPixelCenters) on random maps', () => {
    const rnd = lcg(7);
    for (const [w, h, w2, h2] of [
      [2, 2, 4, 4],
      [7, 5, 31, 17],
      [16, 16, 5, 3],
      [9, 13, 9, 13],
      [1, 1, 6, 4],
      [10, 3, 1, 1],
    ]) {
      const map = Float32Array.from({ length: w * h }, rnd);
      const ours = resizeMapBilinear(map, w, h, w2, h2);
      const ref = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(map, [1, h, w, 1]), [h2, w2], false, true).dataSync() as Float32Array);
      assert.ok(maxAbsDiff(ours, ref) < 1e-6, `${w}x${h} → ${w2}x${h2}`);
    }
  });

  test('bilinear RGBA resize matches tf within rounding', () => {
    const img = randomImage(11, 7, 3);
    const ours = resizeImageBilinear(img, 20, 9);
    const ref = tf.tidy(() =>
      tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(img.data), [1, 7, 11, 4]), [9, 20], false, true).dataSync(),
    );
    assert.equal(ours.width, 20);
    assert.ok(maxAbsDiff(ours.data, ref) <= 0.5 + 1e-6);
  });

  test('nearest label resize keeps the type, replicates on upscaling and matches tf', () => {
    const up = resizeLabelsNearest(Int32Array.from([1, 2, 3, 4]), 2, 2, 4, 4);
    assert.ok(up instanceof Int32Array);
    assert.deepEqual(Array.from(up), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    const down = resizeLabelsNearest(
      Uint8Array.from({ length: 16 }, (_, i) => i),
      4,
      4,
      2,
      2,
    );
    assert.ok(down instanceof Uint8Array);
    assert.deepEqual(Array.from(down), [5, 7, 13, 15]);

    const rnd = lcg(3);
    for (const [w, h, w2, h2] of [
      [5, 7, 13, 3],
      [32, 32, 7, 9],
      [3, 3, 3, 3],
    ]) {
      const labels = Int32Array.from({ length: w * h }, () => Math.floor(rnd() * 20));
      const ours = resizeLabelsNearest(labels, w, h, w2, h2);
      const ref = tf.tidy(() =>
        tf.image.resizeNearestNeighbor(tf.tensor4d(Float32Array.from(labels), [1, h, w, 1]), [h2, w2], false, true).dataSync(),
      );
      assert.deepEqual(Array.from(ours), Array.from(ref), `${w}x${h} → ${w2}x${h2}`);
    }
  });

  test('nearest image resize enlarges pixels into blocks', () => {
    const img = randomImage(3, 2, 9);
    const big = resizeImageNearest(img, 9, 6);
    for (let y = 0; y < 6; y++)
      for (let x = 0; x < 9; x++) assert.deepEqual(pixel(big, x, y), pixel(img, Math.floor(x / 3), Math.floor(y / 3)));
  });

  test('size mismatches are rejected', () => {
    assert.throws(() => resizeMapBilinear(new Float32Array(5), 2, 2, 4, 4), RangeError);
    assert.throws(() => resizeMapBilinear(new Float32Array(4), 2, 2, 0, 4), RangeError);
  });
});

describe('overlay', () => {
  const img = randomImage(16, 9, 5);
  const heat = Float32Array.from({ length: 16 * 9 }, lcg(11));

  test('opacity 0 returns the image unchanged; opacity 1 returns the colormap', () => {
    assert.deepEqual(overlayHeatmap(img, heat, { opacity: 0 }).data, img.data);
    const full = overlayHeatmap(img, heat, { colormap: 'viridis', opacity: 1 });
    const heatImg = heatmapImage(heat, 16, 9, 'viridis');
    for (let i = 0; i < 16 * 9; i++) {
      assert.deepEqual(Array.from(full.data.subarray(i * 4, i * 4 + 3)), Array.from(heatImg.data.subarray(i * 4, i * 4 + 3)));
      assert.equal(full.data[i * 4 + 3], img.data[i * 4 + 3]);
    }
  });

  test('opacity 0.5 is the mean, and the input is not modified', () => {
    const before = img.data.slice();
    const half = overlayHeatmap(img, heat, { colormap: 'jet', opacity: 0.5 });
    assert.deepEqual(img.data, before);
    const c = colormap('jet', heat[0]);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(half.data[k] - (img.data[k] + c[k]) / 2) <= 1);
  });

  test('heatmapImage: values through the colormap, NaN as 0, opaque', () => {
    const h = heatmapImage(Float32Array.from([0, 1, NaN, 0.5]), 2, 2, 'gray');
    assert.deepEqual(Array.from(h.data), [0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 255, 128, 128, 128, 255]);
    assert.throws(() => heatmapImage(new Float32Array(3), 2, 2), RangeError);
  });

  test('labelImage and the default palette: dark background, ten distinct colours, wrap-around', () => {
    const pal = defaultPalette();
    assert.equal(pal.length, 256);
    assert.ok(
      pal[0].every((v) => v < 40),
      'class 0 is dark',
    );
    const keys = new Set(pal.slice(0, 11).map((c) => c.join(',')));
    assert.equal(keys.size, 11);
    const out = labelImage(Int32Array.from([0, 1, 10, 256 + 3]), 2, 2, pal);
    assert.deepEqual(pixel(out, 0, 0), [...pal[0], 255]);
    assert.deepEqual(pixel(out, 1, 0), [...pal[1], 255]);
    assert.deepEqual(pixel(out, 0, 1), [...pal[10], 255]);
    assert.deepEqual(pixel(out, 1, 1), [...pal[3], 255]);
  });
});

describe('contour', () => {
  const grid = (rows: string[]) => Uint8Array.from(rows.join('').split(''), Number);

  test('boundary of a 3x3 block in a 5x5 mask is the ring of 8', () => {
    const mask = grid(['00000', '01110', '01110', '01110', '00000']);
    assert.deepEqual(contourMask(mask, 5, 5), grid(['00000', '01110', '01010', '01110', '00000']));
  });

  test('boundary of an irregular mask touching the edge (outside the image counts as outside)', () => {
    const mask = grid(['11000', '11110', '11110', '01111', '00011']);
    assert.deepEqual(contourMask(mask, 5, 5), grid(['11000', '10110', '10010', '01101', '00011']));
  });

  test('thickness 2 takes in pixels two steps from the outside', () => {
    const mask = grid(['00000', '01110', '01110', '01110', '00000']);
    assert.deepEqual(contourMask(mask, 5, 5, 2), mask);
  });

  test('drawContour paints the boundary and, with an outline, the ring just outside', () => {
    const mask = grid(['00000', '01110', '01110', '01110', '00000']);
    const plain = drawContour(solid(5, 5, [0, 0, 255, 255]), mask, { color: [255, 0, 0], outline: null, thickness: 1 });
    const red = Array.from({ length: 25 }, (_, i) => (plain.data[i * 4] === 255 ? 1 : 0));
    assert.deepEqual(Uint8Array.from(red), contourMask(mask, 5, 5));
    assert.deepEqual(pixel(plain, 2, 2), [0, 0, 255, 255]);

    const outlined = drawContour(solid(5, 5, [0, 0, 255, 255]), mask, { color: [255, 0, 0], outline: [0, 0, 0], thickness: 1 });
    assert.deepEqual(pixel(outlined, 0, 2), [0, 0, 0, 255]); // 4-neighbour outside
    assert.deepEqual(pixel(outlined, 0, 0), [0, 0, 255, 255]); // diagonal only: untouched
    assert.deepEqual(pixel(outlined, 1, 1), [255, 0, 0, 255]);
  });
});

describe('marker', () => {
  test('a ring around the pixel with a clear centre and a dark edge', () => {
    const img = drawMarker(solid(64, 64, [128, 128, 128, 255]), 32, 32, { radius: 8 });
    assert.deepEqual(pixel(img, 32, 32), [128, 128, 128, 255], 'centre left clear');
    assert.deepEqual(pixel(img, 40, 32), [255, 255, 255, 255], 'on the ring');
    assert.deepEqual(pixel(img, 32, 24), [255, 255, 255, 255], 'on the ring');
    let dark = 0;
    for (let i = 0; i < 64 * 64; i++) if (img.data[i * 4] === 0) dark++;
    assert.ok(dark > 20, 'has a dark outline');
  });

  test('clips at the image border without throwing', () => {
    const img = drawMarker(solid(10, 10, [128, 128, 128, 255]), 0, 9);
    assert.equal(img.width, 10);
  });
});

describe('text', () => {
  test('every printable ASCII character has a glyph (unknown ones draw as "?")', () => {
    const question = createImage(5, 9);
    drawText(question, 0, 0, '?');
    for (let c = 33; c < 127; c++) {
      const ch = String.fromCharCode(c);
      const img = createImage(5, 9);
      drawText(img, 0, 0, ch);
      assert.ok(
        img.data.some((v) => v > 0),
        `glyph for ${ch}`,
      );
      if (ch !== '?') assert.notDeepEqual(img.data, question.data, `${ch} is not drawn as '?'`);
    }
    const unknown = createImage(5, 9);
    drawText(unknown, 0, 0, '∑');
    assert.deepEqual(unknown.data, question.data);
  });

  test('measureText and fitText', () => {
    assert.deepEqual(measureText('ab', 2), { width: 22, height: 18 });
    assert.deepEqual(measureText('', 1), { width: 0, height: 9 });
    assert.equal(fitText('short', 100), 'short');
    const cut = fitText('a rather long title', 60);
    assert.ok(cut.endsWith('...') && measureText(cut).width <= 60, cut);
  });
});

describe('figure', () => {
  test('panels side by side with margins on a white background', () => {
    const a = solid(300, 200, [255, 0, 0, 255]);
    const b = solid(300, 150, [0, 0, 255, 255]);
    const fig = renderFigure([{ image: a }, { image: b }], { margin: 10 });
    assert.equal(fig.width, 10 + 300 + 10 + 300 + 10);
    assert.equal(fig.height, 10 + 200 + 10);
    assert.deepEqual(pixel(fig, 0, 0), [255, 255, 255, 255]);
    assert.deepEqual(pixel(fig, 10, 10), [255, 0, 0, 255]);
    assert.deepEqual(pixel(fig, 320, 10), [0, 0, 255, 255]);
    assert.deepEqual(pixel(fig, 320, 170), [255, 255, 255, 255], 'below the shorter panel');
  });

  test('small panels are enlarged by a whole factor; titles and legends add rows; dark theme', () => {
    const img = randomImage(64, 64, 2);
    const labels = Int32Array.from({ length: 64 * 64 }, (_, i) => (i % 64 < 32 ? 0 : 2));
    const plain = renderFigure([{ image: img }], { margin: 8 });
    assert.equal(plain.width, 8 + 256 + 8);
    assert.deepEqual(pixel(plain, 8 + 4 * 10 + 1, 8 + 4 * 20 + 2), pixel(img, 10, 20));

    const full = renderFigure(
      [
        { image: img, title: 'input' },
        {
          image: labelImage(labels, 64, 64),
          title: 'prediction',
          legend: { type: 'classes', entries: classLegendEntries(labels, defaultPalette(), ['bg', 'a', 'digit']) },
        },
        {
          image: img,
          title: 'heatmap',
          legend: { type: 'colorbar', colormap: 'turbo' },
          marker: [10, 10],
          contour: new Uint8Array(64 * 64).fill(1),
        },
      ],
      { margin: 8, background: 'dark' },
    );
    assert.equal(full.width, 8 + 3 * (256 + 8));
    assert.ok(full.height > plain.height + 20);
    assert.deepEqual(pixel(full, 0, 0).slice(0, 3), [24, 24, 28]);
    // Some light text pixels in the title row.
    let light = 0;
    for (let y = 8; y < 20; y++) for (let x = 8; x < 264; x++) if (pixel(full, x, y)[0] > 200) light++;
    assert.ok(light > 10);
    // The panel image itself is not modified by its decorations.
    assert.deepEqual(renderFigure([{ image: img }], { margin: 8 }).data, plain.data);
  });

  test('classLegendEntries lists present classes by index', () => {
    const entries = classLegendEntries(Int32Array.from([3, 0, 3, 1]), defaultPalette(), ['background', 'cat']);
    assert.deepEqual(
      entries.map((e) => e.label),
      ['0 background', '1 cat', 'class 3'],
    );
    assert.deepEqual(entries[1].color, defaultPalette()[1]);
  });

  test('a long class legend is summarised with "+N more"', () => {
    const labels = Int32Array.from({ length: 100 }, (_, i) => i);
    const fig = renderFigure(
      [{ image: solid(100, 100, [0, 0, 0, 255]), legend: { type: 'classes', entries: classLegendEntries(labels, defaultPalette()) } }],
      {
        minPanelSize: 0,
        maxLegendRows: 2,
      },
    );
    assert.ok(fig.height < 100 + 80);
  });
});
