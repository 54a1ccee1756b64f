/**
 * PNG and JPEG bytes <-> RgbaImage. No file system here, so the module can go into a browser
 * bundle; but pngjs's sync API uses Node's Buffer and zlib, so in a page decode with a canvas
 * instead (or ship a Buffer polyfill).
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { SegGradCamError } from '../errors.js';
import type { RgbaImage } from '../image.js';

export type ImageFormat = 'png' | 'jpeg';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format by the file's first bytes (the name can lie), or null. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  return null;
}

/** The format a file name asks for by its extension (.png, .jpg, .jpeg; any case), or null. */
export function formatFromPath(path: string): ImageFormat | null {
  const m = /\.(png|jpe?g)$/i.exec(path);
  if (!m) return null;
  return m[1].toLowerCase() === 'png' ? 'png' : 'jpeg';
}

/** sharp's default pixel limit (0x3FFF * 0x3FFF): larger images are refused before decoding. */
export const DEFAULT_PIXEL_LIMIT = 0x3fff * 0x3fff;

export interface DecodeOptions {
  /** Refuse images of more pixels than this (read from the header, before decoding); 0 = no limit. Default DEFAULT_PIXEL_LIMIT. */
  limitInputPixels?: number;
}

/**
 * Width and height from the header alone: the PNG IHDR chunk, or the JPEG start-of-frame marker.
 * Null when the header is missing or truncated (decoding then reports the corrupt file).
 */
export function imageDimensions(bytes: Uint8Array): { width: number; height: number } | null {
  const format = detectImageFormat(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    // Signature (8), then the first chunk: length (4), 'IHDR' (4), width (4), height (4).
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (format === 'jpeg') {
    let i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xff) return null;
      const marker = bytes[i + 1];
      // Fill bytes, and markers without a length (RSTn, TEM).
      if (marker === 0xff) {
        i++;
        continue;
      }
      if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
        i += 2;
        continue;
      }
      const length = view.getUint16(i + 2);
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision (1), height (2), width (2).
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        if (i + 9 > bytes.length) return null;
        return { width: view.getUint16(i + 7), height: view.getUint16(i + 5) };
      }
      if (marker === 0xda || length < 2) return null; // image data before any frame header
      i += 2 + length;
    }
  }
  return null;
}

/**
 * Decodes a PNG or JPEG into 8-bit RGBA. Grayscale, palette, 1/2/4/16-bit and alpha PNGs are all
 * converted (16-bit is scaled to 8); JPEG gets alpha 255. `nameForErrors` names the file in messages.
 * An image of more pixels than `limitInputPixels` (by its header) is an 'image' error, raised
 * before any pixel is decoded.
 */
export function decodeImage(bytes: Uint8Array, nameForErrors: string, options: DecodeOptions = {}): RgbaImage {
  const format = detectImageFormat(bytes);
  if (format === null) throw new SegGradCamError(`cannot read ${nameForErrors}: ${notAnImage(bytes)}`, 'image');
  checkPixelLimit(bytes, nameForErrors, options.limitInputPixels ?? DEFAULT_PIXEL_LIMIT);
  let width: number;
  let height: number;
  let pixels: Uint8Array;
  try {
    if (format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      pixels = png.data;
    } else {
      // tolerantDecoding (jpeg-js's default) shows a truncated JPEG as far as it goes, as browsers do.
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 200, maxMemoryUsageInMB: 1024 });
      ({ width, height } = img);
      pixels = img.data;
    }
  } catch (err) {
    const why = oneLine(err);
    if (/maxResolutionInMP|maxMemoryUsage|allocate/i.test(why))
      throw new SegGradCamError(`cannot read ${nameForErrors}: the image is too large to decode (${why})`, 'image');
    throw new SegGradCamError(`cannot read ${nameForErrors}: corrupt ${format === 'png' ? 'PNG' : 'JPEG'} data (${why})`, 'image');
  }
  if (!(width > 0 && height > 0) || pixels.length !== width * height * 4) {
    throw new SegGradCamError(
      `cannot read ${nameForErrors}: corrupt ${format.toUpperCase()} data (${width}x${height} image with ${pixels.length} bytes of pixels)`,
      'image',
    );
  }
  // Our own memory: a view when the decoder's buffer holds just these pixels (large images: no
  // copy), a copy when it is a slice of a shared pool.
  const own = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength;
  return { width, height, data: own ? new Uint8ClampedArray(pixels.buffer, 0, pixels.length) : new Uint8ClampedArray(pixels) };
}

function checkPixelLimit(bytes: Uint8Array, name: string, limit: number): void {
  if (!(limit > 0)) return;
  const size = imageDimensions(bytes);
  if (size && size.width * size.height > limit) {
    throw new SegGradCamError(
      `cannot read ${name}: the image is ${size.width}x${size.height} = ${size.width * size.height} pixels, more than the limit of ${limit} (see --limit-input-pixels)`,
      'image',
    );
  }
}

/** Encodes as PNG: 8-bit RGB when every pixel is opaque (smaller), RGBA otherwise. */
export function encodePng(img: RgbaImage): Uint8Array {
  checkImage(img);
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const colorType = isOpaque(img) ? 2 : 6;
  const out = PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Encodes as baseline JPEG (quality 1..100). JPEG has no alpha: it is dropped. */
export function encodeJpeg(img: RgbaImage, quality = 90): Uint8Array {
  checkImage(img);
  if (!(quality >= 1 && quality <= 100)) throw new RangeError(`JPEG quality must be in 1..100, got ${quality}`);
  const out = jpeg.encode({ width: img.width, height: img.height, data: img.data }, Math.round(quality)).data;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Encodes by the extension of `path` (.png, .jpg, .jpeg); anything else is a 'usage' error. */
export function encodeImageFor(path: string, img: RgbaImage): Uint8Array {
  const format = formatFromPath(path);
  if (format === null) throw new SegGradCamError(`cannot tell which image format to write for ${path}: use .png, .jpg or .jpeg`, 'usage');
  return format === 'png' ? encodePng(img) : encodeJpeg(img);
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** Why bytes are not a PNG/JPEG, naming a few formats people try. */
function notAnImage(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const ascii = String.fromCharCode(...bytes.subarray(0, 12));
  const other = ascii.startsWith('GIF8')
    ? 'GIF'
    : ascii.startsWith('BM')
      ? 'BMP'
      : ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP'
        ? 'WebP'
        : ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')
          ? 'TIFF'
          : null;
  if (other) return `it is a ${other} image; only PNG and JPEG are supported`;
  return 'not a PNG or JPEG image (unknown file signature)';
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim() || 'unknown error';
}

function isOpaque(img: RgbaImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) return false;
  return true;
}

/** A malformed RgbaImage is a bug in the caller, not a user error. */
export function checkImage(img: RgbaImage): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new RangeError(`bad image size ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 4) {
    throw new RangeError(`image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x4`);
  }
}
