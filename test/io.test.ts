import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { PNG, type ColorType } from 'pngjs';
import { SegGradCamError } from '../src/errors.js';
import { createImage, type RgbaImage } from '../src/image.js';
import {
  DEFAULT_PIXEL_LIMIT,
  decodeImage,
  detectImageFormat,
  encodeImageFor,
  encodeJpeg,
  encodePng,
  formatFromPath,
  imageDimensions,
} from '../src/io/codec.js';
import { resizeRgbaToRgb } from '../src/render/resize.js';
import { imageToInput } from '../src/preprocess.js';
import { parseLabels, parseLabelsWithColors } from '../src/io/labels.js';
import { readLabelsFile } from '../src/node.js';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readImageFile, readMaskFile, writeFileAtomic, writeImageFile } from '../src/io/files.js';
import { chunk, hugeBlackPng } from './helpers/png.js';
import { randomImage, useCpu } from './helpers/setup.js';

/** A PNG made by pngjs from raw samples (8- or 16-bit, any colour type pngjs writes). */
function makePng(width: number, height: number, colorType: ColorType, bitDepth: 8 | 16, samples: number[]): Uint8Array {
  const png = new PNG({ width, height });
  const raw = bitDepth === 16 ? new Uint16Array(samples) : new Uint8Array(samples);
  png.data = Buffer.from(raw.buffer);
  const hasAlpha = colorType === 4 || colorType === 6;
  return PNG.sync.write(png, { colorType, bitDepth, inputColorType: colorType, inputHasAlpha: hasAlpha });
}

/** A 2x2 palette PNG built by hand (pngjs cannot write palettes). */
function palettePng(): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr.set([8, 3, 0, 0, 0], 8); // 8-bit, palette
  const plte = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]);
  const rows = Uint8Array.from([0, 0, 1, 0, 2, 0]); // filter byte 0, then indices
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', plte),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function smoothImage(w: number, h: number): RgbaImage {
  const img = createImage(w, h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) img.data.set([(x * 255) / (w - 1), (y * 255) / (h - 1), 128 + 60 * Math.sin(x / 5), 255], (y * w + x) * 4);
  return img;
}

function assertImageError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SegGradCamError, `not a SegGradCamError: ${err}`);
    assert.equal(err.code, 'image');
    assert.ok(!err.message.includes('\n'), 'one line');
    for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" should mention "${p}"`);
    return true;
  });
}

async function rejectsWith(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SegGradCamError, `not a SegGradCamError: ${err}`);
    assert.equal(err.code, code);
    for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" should mention "${part}"`);
    return true;
  });
}

describe('codec', () => {
  test('format detection by magic bytes and by file name', () => {
    assert.equal(detectImageFormat(encodePng(randomImage(2, 2))), 'png');
    assert.equal(detectImageFormat(encodeJpeg(smoothImage(8, 8))), 'jpeg');
    assert.equal(detectImageFormat(new Uint8Array([1, 2, 3])), null);
    assert.equal(formatFromPath('a/b.PNG'), 'png');
    assert.equal(formatFromPath('x.jpeg'), 'jpeg');
    assert.equal(formatFromPath('x.JPG'), 'jpeg');
    assert.equal(formatFromPath('x.bmp'), null);
  });

  test('PNG round trip is exact, with and without alpha', () => {
    const withAlpha = randomImage(13, 7, 4);
    withAlpha.data[3] = 17;
    assert.deepEqual(decodeImage(encodePng(withAlpha), 'a.png'), withAlpha);
    const opaque = randomImage(13, 7, 5);
    const bytes = encodePng(opaque);
    assert.equal(bytes[25], 2, 'opaque images are written as RGB (IHDR colour type 2)');
    assert.deepEqual(decodeImage(bytes, 'b.png'), opaque);
  });

  test('JPEG round trip is close (quality 90) and alpha becomes 255', () => {
    const img = smoothImage(48, 32);
    const back = decodeImage(encodeJpeg(img), 'c.jpg');
    assert.equal(back.width, 48);
    assert.equal(back.height, 32);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < img.data.length; i++) {
      if (i % 4 === 3) {
        assert.equal(back.data[i], 255);
        continue;
      }
      const d = Math.abs(back.data[i] - img.data[i]);
      sum += d;
      max = Math.max(max, d);
    }
    assert.ok(sum / (48 * 32 * 3) < 2, `mean error ${sum / (48 * 32 * 3)}`);
    assert.ok(max < 16, `max error ${max}`);
    assert.ok(encodeJpeg(img, 30).length < encodeJpeg(img, 95).length);
    assert.throws(() => encodeJpeg(img, 0), RangeError);
  });

  test('grayscale, gray+alpha, 16-bit and palette PNGs decode to 8-bit RGBA', () => {
    assert.deepEqual(Array.from(decodeImage(makePng(2, 1, 0, 8, [10, 200]), 'g8').data), [10, 10, 10, 255, 200, 200, 200, 255]);
    assert.deepEqual(Array.from(decodeImage(makePng(2, 1, 4, 8, [10, 20, 200, 0]), 'ga').data), [10, 10, 10, 20, 200, 200, 200, 0]);
    // 16-bit samples scale to 8 bits: 257 * v → v.
    assert.deepEqual(Array.from(decodeImage(makePng(2, 1, 0, 16, [257 * 9, 65535]), 'g16').data), [9, 9, 9, 255, 255, 255, 255, 255]);
    assert.deepEqual(Array.from(decodeImage(makePng(1, 1, 6, 16, [257 * 1, 257 * 2, 257 * 3, 257 * 4]), 'rgba16').data), [1, 2, 3, 4]);
    const pal = decodeImage(palettePng(), 'pal.png');
    assert.deepEqual(Array.from(pal.data), [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 0, 0, 255]);
  });

  test('corrupt or unknown data → SegGradCamError "image" naming the file and the problem', () => {
    const png = encodePng(randomImage(20, 20));
    const garbage = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 255);
    assertImageError(() => decodeImage(Uint8Array.from([...png.subarray(0, 8), ...garbage]), 'bad.png'), 'bad.png', 'corrupt PNG');
    assertImageError(() => decodeImage(png.subarray(0, png.length >> 1), 'half.png'), 'half.png', 'corrupt PNG');
    const flipped = png.slice();
    flipped[40] ^= 0xff; // a CRC or data error
    assertImageError(() => decodeImage(flipped, 'flip.png'), 'flip.png', 'corrupt PNG');
    assertImageError(() => decodeImage(Uint8Array.from([0xff, 0xd8, 0xff, ...garbage]), 'bad.jpg'), 'bad.jpg', 'corrupt JPEG');
    assertImageError(() => decodeImage(garbage, 'noise.bin'), 'noise.bin', 'not a PNG or JPEG');
    assertImageError(() => decodeImage(new Uint8Array(0), 'empty.png'), 'empty.png', 'empty');
    assertImageError(() => decodeImage(new TextEncoder().encode('GIF89a......'), 'x.gif'), 'x.gif', 'GIF');
  });

  test('encodeImageFor picks the format by extension; others are a usage error', () => {
    const img = randomImage(4, 4);
    assert.equal(detectImageFormat(encodeImageFor('a.png', img)), 'png');
    assert.equal(detectImageFormat(encodeImageFor('a.JPEG', img)), 'jpeg');
    assert.throws(
      () => encodeImageFor('a.webp', img),
      (e: unknown) => e instanceof SegGradCamError && e.code === 'usage' && e.message.includes('a.webp'),
    );
  });
});

describe('files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sgc-io-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('readImageFile: decodes; a missing file, a directory and a corrupt file are user errors', async () => {
    const img = randomImage(5, 3);
    await writeFile(join(dir, 'r.png'), encodePng(img));
    assert.deepEqual(await readImageFile(join(dir, 'r.png')), img);
    const missing = join(dir, 'nope.png');
    await rejectsWith(readImageFile(missing), 'file', `image file not found: ${missing}`);
    await rejectsWith(readImageFile(dir), 'file', dir);
    await writeFile(join(dir, 'bad.png'), 'not an image');
    await rejectsWith(readImageFile(join(dir, 'bad.png')), 'image', join(dir, 'bad.png'));
  });

  test('writeFileAtomic writes, replaces and keeps the old file mode', async () => {
    const p = join(dir, 'atomic.bin');
    await writeFileAtomic(p, Uint8Array.from([1, 2, 3]));
    assert.deepEqual(Array.from(await readFile(p)), [1, 2, 3]);
    await chmod(p, 0o600);
    await writeFileAtomic(p, Uint8Array.from([4, 5]));
    assert.deepEqual(Array.from(await readFile(p)), [4, 5]);
    assert.equal((await stat(p)).mode & 0o777, 0o600);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes('atomic')),
      ['atomic.bin'],
    );
  });

  test('writeFileAtomic leaves no file and no temp file when the directory does not exist', async () => {
    const sub = await mkdtemp(join(dir, 'case-'));
    const target = join(sub, 'missing-dir', 'out.png');
    await rejectsWith(writeFileAtomic(target, Uint8Array.from([1])), 'file', target, 'does not exist');
    assert.deepEqual(await readdir(sub), []);
  });

  test('writeFileAtomic onto a directory fails and removes its temp file', async () => {
    const sub = await mkdtemp(join(dir, 'case-'));
    await mkdir(join(sub, 'taken'));
    await rejectsWith(writeFileAtomic(join(sub, 'taken'), Uint8Array.from([1, 2])), 'file', 'taken', 'directory');
    assert.deepEqual(await readdir(sub), ['taken']);
    assert.deepEqual(await readdir(join(sub, 'taken')), []);
  });

  test('writeFileAtomic removes its temp file when the write itself fails, and keeps the old content', async () => {
    const sub = await mkdtemp(join(dir, 'case-'));
    const p = join(sub, 'keep.txt');
    await writeFile(p, 'old');
    // Not bytes: the write into the temp file throws (a bug, so it is rethrown as it is).
    await assert.rejects(writeFileAtomic(p, Symbol('x') as unknown as Uint8Array), TypeError);
    assert.deepEqual(await readdir(sub), ['keep.txt']);
    assert.equal(await readFile(p, 'utf8'), 'old');
  });

  test('writeImageFile by extension; an unknown extension writes nothing', async () => {
    const img = randomImage(6, 4);
    await writeImageFile(join(dir, 'w.png'), img);
    assert.deepEqual(await readImageFile(join(dir, 'w.png')), img);
    await writeImageFile(join(dir, 'w.jpg'), smoothImage(16, 16));
    assert.equal(detectImageFormat(await readFile(join(dir, 'w.jpg'))), 'jpeg');
    await rejectsWith(writeImageFile(join(dir, 'w.tiff'), img), 'usage', 'w.tiff');
    assert.ok(!(await readdir(dir)).some((f) => f.includes('w.tiff')));
  });

  test('readMaskFile: light and opaque pixels are in the mask', async () => {
    const px = [
      [255, 255, 255, 255], // white → in
      [0, 0, 0, 255], // black → out
      [200, 200, 200, 255], // light gray → in
      [100, 100, 100, 255], // dark gray → out
      [255, 255, 255, 0], // transparent white → out
      [255, 255, 255, 200], // mostly opaque white → in
    ];
    const img = createImage(3, 2);
    px.forEach((c, i) => img.data.set(c, i * 4));
    const p = join(dir, 'mask.png');
    await writeFile(p, encodePng(img));
    const m = await readMaskFile(p);
    assert.deepEqual({ width: m.width, height: m.height }, { width: 3, height: 2 });
    assert.deepEqual(Array.from(m.mask), [1, 0, 1, 0, 0, 1]);
    assert.deepEqual(Array.from((await readMaskFile(p, 3, 2)).mask), [1, 0, 1, 0, 0, 1]);
    await rejectsWith(readMaskFile(p, 4, 2), 'shape', 'mask', '3x2', '4x2');

    // A grayscale JPEG mask: blocks stay on their side of the threshold.
    const j = createImage(16, 16);
    for (let i = 0; i < 256; i++) j.data.set(i % 16 < 8 ? [0, 0, 0, 255] : [255, 255, 255, 255], i * 4);
    await writeFile(join(dir, 'mask.jpg'), encodeJpeg(j));
    const jm = await readMaskFile(join(dir, 'mask.jpg'));
    assert.deepEqual(
      Array.from(jm.mask),
      Array.from({ length: 256 }, (_, i) => (i % 16 < 8 ? 0 : 1)),
    );
  });
});

describe('pixel limit and large images', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sgc-io-limit-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('imageDimensions reads PNG IHDR and JPEG SOF headers (baseline and progressive)', () => {
    assert.deepEqual(imageDimensions(encodePng(randomImage(37, 23))), { width: 37, height: 23 });
    assert.deepEqual(imageDimensions(hugeBlackPng(20000, 20000)), { width: 20000, height: 20000 });
    assert.deepEqual(imageDimensions(encodeJpeg(randomImage(31, 17))), { width: 31, height: 17 });
    // The same JPEG with its frame marker made progressive (SOF2): still read from the header.
    const jpg = encodeJpeg(randomImage(31, 17));
    const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
    jpg[sof + 1] = 0xc2;
    assert.deepEqual(imageDimensions(jpg), { width: 31, height: 17 });
    assert.equal(imageDimensions(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0])), null);
    assert.equal(imageDimensions(Uint8Array.from([1, 2, 3])), null);
  });

  test('a 20000x20000 PNG (a small file) is refused from its header, fast, over the default limit of 268402689 pixels', () => {
    const bytes = hugeBlackPng(20000, 20000);
    assert.ok(bytes.length < 200_000, `${bytes.length} bytes`);
    assert.equal(DEFAULT_PIXEL_LIMIT, 268402689);
    const t0 = performance.now();
    assertImageError(() => decodeImage(bytes, 'huge.png'), 'huge.png', '20000x20000', '400000000 pixels', '268402689');
    assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  });

  test('a JPEG whose header says 20000x20000 is refused before decoding', () => {
    const jpg = encodeJpeg(randomImage(8, 8));
    const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
    new DataView(jpg.buffer, jpg.byteOffset).setUint16(sof + 5, 20000);
    new DataView(jpg.buffer, jpg.byteOffset).setUint16(sof + 7, 20000);
    assertImageError(() => decodeImage(jpg, 'huge.jpg'), 'huge.jpg', '20000x20000', 'limit');
  });

  test('limitInputPixels: a smaller limit refuses, 0 means no limit, the limit itself is allowed', async () => {
    const p = join(dir, 'limit.png');
    await writeFile(p, encodePng(randomImage(32, 24)));
    await rejectsWith(readImageFile(p, { limitInputPixels: 767 }), 'image', '32x24', '768 pixels', 'limit of 767');
    assert.equal((await readImageFile(p, { limitInputPixels: 768 })).width, 32);
    assert.equal((await readImageFile(p, { limitInputPixels: 0 })).width, 32);
  });

  test('a mask of the wrong size is refused from its header, before decoding', async () => {
    const p = join(dir, 'huge-mask.png');
    await writeFile(p, hugeBlackPng(20000, 20000));
    const t0 = performance.now();
    await rejectsWith(readMaskFile(p, 32, 24), 'shape', '20000x20000', '32x24');
    assert.ok(performance.now() - t0 < 1000);
  });

  test('resizeRgbaToRgb equals tf.image.resizeBilinear (half-pixel centres) on the cpu backend, exactly', async () => {
    await useCpu();
    for (const [w, h, w2, h2] of [
      [37, 23, 16, 16],
      [5, 3, 16, 12],
      [64, 64, 64, 64],
      [300, 7, 13, 29],
    ]) {
      const img = randomImage(w, h, w + h);
      const rgb = new Float32Array(w * h * 3);
      for (let i = 0; i < w * h; i++) rgb.set([img.data[4 * i], img.data[4 * i + 1], img.data[4 * i + 2]], 3 * i);
      const want = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(rgb, [1, h, w, 3]), [h2, w2], false, true).dataSync());
      const got = resizeRgbaToRgb(img, w2, h2);
      assert.equal(got.length, want.length);
      got.forEach((v, i) => assert.ok(v === want[i], `${w}x${h}→${w2}x${h2} [${i}]: ${v} !== ${want[i]}`));
    }
  });

  test('imageToInput of a 6000x6000 image allocates no float copy of it (peak RSS grows by < 1/4 of its RGBA bytes)', () => {
    const p = join(dir, 'big.png');
    // A smooth, compressible 6000x6000 RGB image: 144 MB as RGBA, a few MB as a file.
    const png = new PNG({ width: 6000, height: 6000, colorType: 2 });
    for (let y = 0; y < 6000; y++) png.data.fill(y % 256, y * 24000, (y + 1) * 24000);
    writeFileSync(p, PNG.sync.write(png, { colorType: 2 }));
    const script = `
      import { readImageFile } from './src/io/files.ts';
      import { imageToInput } from './src/preprocess.ts';
      import * as tf from '@tensorflow/tfjs';
      await tf.setBackend('cpu');
      const img = await readImageFile(${JSON.stringify(p)});
      globalThis.gc();
      const before = process.resourceUsage().maxRSS * 1024;
      const x = imageToInput(img, 64, 64, 3);
      const grown = process.resourceUsage().maxRSS * 1024 - before;
      x.dispose();
      process.stdout.write(JSON.stringify({ grown, bytes: img.data.length }));`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { grown, bytes } = JSON.parse(r.stdout) as { grown: number; bytes: number };
    assert.equal(bytes, 6000 * 6000 * 4);
    assert.ok(grown < bytes / 4, `peak RSS grew by ${(grown / 2 ** 20).toFixed(0)} MB for a ${(bytes / 2 ** 20).toFixed(0)} MB image`);
  });
});

describe('scaling to the input range', () => {
  test('every byte v becomes fround(v / 255) exactly, as PyTorch’s ToTensor gives it; [-1, 1] = fround(fround(2v / 255) − 1)', async () => {
    await useCpu();
    const image = createImage(256, 1);
    for (let v = 0; v < 256; v++) image.data.set([v, v, v, 255], v * 4);
    const x = imageToInput(image, 1, 256, 3);
    const y = imageToInput(image, 1, 256, 3, { inputRange: [-1, 1] });
    const xd = x.dataSync();
    const yd = y.dataSync();
    tf.dispose([x, y]);
    for (let v = 0; v < 256; v++) {
      // v · fround(1/255) (the former scaling) differs from this in the last bit for 126 of the 256 bytes.
      assert.equal(xd[v * 3], Math.fround(v / 255), `byte ${v}`);
      assert.equal(yd[v * 3], Math.fround(Math.fround((2 * v) / 255) - 1), `byte ${v} in [-1, 1]`);
    }
  });
});

describe('labels: one parser for the CLI, the library and the explorer', () => {
  test('a JSON array, one name per line, names with colours, JSON objects; bad files are file errors', () => {
    assert.deepEqual(parseLabels('["background", "digit 0"]'), ['background', 'digit 0']);
    assert.deepEqual(parseLabels('background\r\n  person  \n\n'), ['background', 'person']);
    assert.deepEqual(parseLabels('\uFEFFsky #87ceeb\nroad, #333\ntall tree\t#0a0\n#hash tag'), ['sky', 'road', 'tall tree', '#hash tag']);
    assert.deepEqual(parseLabelsWithColors('sky #87ceeb\nroad, #333\nplain'), {
      names: ['sky', 'road', 'plain'],
      colors: [[135, 206, 235], [51, 51, 51], null],
    });
    assert.deepEqual(parseLabelsWithColors('["a", {"name": "b", "color": "#ff0000"}]'), { names: ['a', 'b'], colors: [null, [255, 0, 0]] });
    for (const [text, why] of [
      ['   \n ', /empty/],
      ['[1, 2]', /names/],
      ['[oops', /not valid JSON/],
      ['\u0001\u0002binary', /not text/],
    ] as const) {
      assert.throws(
        () => parseLabels(text),
        (err: unknown) => err instanceof SegGradCamError && err.code === 'file' && why.test(err.message),
        JSON.stringify(text),
      );
    }
  });

  test('labels.ts is browser-safe (no Node imports); readLabelsFile names the path', async () => {
    const source = await readFile(new URL('../src/io/labels.ts', import.meta.url), 'utf8');
    assert.doesNotMatch(source, /from 'node:|require\(/);
    const dir = await mkdtemp(join(tmpdir(), 'sgc-labels-'));
    try {
      await writeFile(join(dir, 'l.txt'), 'background\ncat #ff0000\n');
      assert.deepEqual(await readLabelsFile(join(dir, 'l.txt')), ['background', 'cat']);
      await writeFile(join(dir, 'bad.json'), '["a",');
      await rejectsWith(readLabelsFile(join(dir, 'bad.json')), 'file', 'not valid JSON', 'bad.json');
      await rejectsWith(readLabelsFile(join(dir, 'none.txt')), 'file', 'labels file not found', 'none.txt');
      await rejectsWith(readLabelsFile(dir), 'file', 'directory');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
