/**
 * The one image type that flows through the library: 8-bit RGBA, row-major, like the browser's
 * ImageData, so the same code runs in Node and in a page.
 */
export interface RgbaImage {
  width: number;
  height: number;
  /** length = width * height * 4; alpha is carried but ignored by the models. */
  data: Uint8ClampedArray;
}

export function createImage(width: number, height: number): RgbaImage {
  return { width, height, data: new Uint8ClampedArray(width * height * 4) };
}
