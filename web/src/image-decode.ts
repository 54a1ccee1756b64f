/**
 * Images decoded by the browser itself (PNG, JPEG, anything it reads) into the library's RGBA
 * image, with no colour management, so pixel values equal a plain PNG decoder's.
 */
import type { RgbaImage } from '../../src/image.js';

export class DecodeError extends Error {}

export async function decodeImage(blob: Blob, name: string): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new DecodeError(`cannot decode ${name}: it is not an image this browser can read (PNG or JPEG expected)`);
  }
  try {
    const { width, height } = bitmap;
    if (width === 0 || height === 0) throw new DecodeError(`cannot decode ${name}: the image is empty`);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D;
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, width, height).data;
    return { width, height, data };
  } finally {
    bitmap.close();
  }
}

export async function fetchImage(url: string): Promise<RgbaImage> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new DecodeError(`cannot fetch the image ${url}: ${(err as Error).message}`);
  }
  if (!res.ok) throw new DecodeError(`cannot fetch the image ${url}: HTTP ${res.status}`);
  return decodeImage(await res.blob(), url.split('/').pop() ?? url);
}
