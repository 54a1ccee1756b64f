import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { PNG, type ColorType } from 'pngjs';
import { SegGradCamError } from '../src/errors.js';
import { createImage, type RgbaImage } from '../src/image.js';
import { decodeImage, detectImageFormat, encodeImageFor, encodeJpeg, encodePng, formatFromPath } from '../src/io/codec.js';
import { readImageFile, readMaskFile, writeFileAtomic, writeImageFile } from '../src/io/files.js';
import { randomImage } from './helpers/setup.js';

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
  const chunk = (type: string, data: Uint8Array) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
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
