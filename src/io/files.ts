/** Node-only file I/O for images and masks. Every user-facing failure is a SegGradCamError. */
import { readFile } from 'node:fs/promises';
import { SegGradCamError } from '../errors.js';
import type { RgbaImage } from '../image.js';
import { decodeImage, encodeImageFor, imageDimensions, type DecodeOptions } from './codec.js';
import { errnoCode, reason, writeOutputs } from './output-set.js';

export { encodeImageFor } from './codec.js';

/**
 * Reads and decodes a PNG or JPEG file into 8-bit RGBA. An image of more pixels than
 * `options.limitInputPixels` (default DEFAULT_PIXEL_LIMIT, 0 = none) is refused from its header.
 */
export async function readImageFile(path: string, options: DecodeOptions = {}): Promise<RgbaImage> {
  return decodeImage(await readImageBytes(path), path, options);
}

async function readImageBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new SegGradCamError(`image file not found: ${path}`, 'file');
    throw new SegGradCamError(`cannot read image file ${path}: ${reason(err)}`, 'file');
  }
}

/**
 * Writes bytes so that `path` either keeps its old content or gets all of the new one, never a
 * part: the bytes go to a temporary file in the same directory (rename is atomic only within one
 * file system), which is flushed and then renamed over `path`. On failure the temporary file is
 * removed and a 'file' error names the path. A set of one: see output-set.ts.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await writeOutputs([{ path, bytes }]);
}

/** Encodes by extension (.png, .jpg, .jpeg; else a 'usage' error) and writes atomically. */
export async function writeImageFile(path: string, img: RgbaImage): Promise<void> {
  await writeFileAtomic(path, encodeImageFor(path, img));
}

export interface MaskFile {
  width: number;
  height: number;
  /** 1 = in the mask, 0 = out; row-major, width * height. */
  mask: Uint8Array;
}

/**
 * Reads a binary mask image. A pixel is in the mask when it is light and not transparent:
 * luminance (0.299 R + 0.587 G + 0.114 B) > 127 and alpha > 127. Images without alpha decode
 * with alpha 255, so for them only the luminance counts (white = in, black = out); a transparent
 * pixel is out whatever its colour. When width and height are given, a mask of another size is
 * a 'shape' error.
 */
export async function readMaskFile(path: string, width?: number, height?: number, options: DecodeOptions = {}): Promise<MaskFile> {
  const bytes = await readImageBytes(path);
  const wrongSize = (w: number, h: number) =>
    new SegGradCamError(`mask ${path} is ${w}x${h} but the image is ${width ?? w}x${height ?? h}`, 'shape');
  // The size from the header first: a mask of the wrong size is refused before decoding.
  const header = imageDimensions(bytes);
  if (header && ((width !== undefined && header.width !== width) || (height !== undefined && header.height !== height)))
    throw wrongSize(header.width, header.height);
  const img = decodeImage(bytes, path, options);
  if ((width !== undefined && img.width !== width) || (height !== undefined && img.height !== height))
    throw wrongSize(img.width, img.height);
  return { width: img.width, height: img.height, mask: maskFromImage(img) };
}

/** The rule of readMaskFile, on a decoded image. */
export function maskFromImage(img: RgbaImage): Uint8Array {
  const d = img.data;
  const mask = new Uint8Array(img.width * img.height);
  for (let i = 0; i < mask.length; i++) {
    const lum = 0.299 * d[i * 4] + 0.587 * d[i * 4 + 1] + 0.114 * d[i * 4 + 2];
    mask[i] = lum > 127 && d[i * 4 + 3] > 127 ? 1 : 0;
  }
  return mask;
}
