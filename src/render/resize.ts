/**
 * Resizing with the pixel-centre convention (align-corners = false, half-pixel centres): output
 * pixel i samples the source at (i + 0.5) * src / dst - 0.5, clamped to the border. Bilinear
 * matches tf.image.resizeBilinear(x, size, false, true), so a heatmap resized here lines up with
 * one resized by the model code.
 */
import type { RgbaImage } from '../image.js';

/** Per output index: the two source indices and the weight of the second. */
interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

function taps(src: number, dst: number): Taps {
  const lo = new Int32Array(dst);
  const hi = new Int32Array(dst);
  const frac = new Float64Array(dst);
  const scale = src / dst;
  for (let i = 0; i < dst; i++) {
    const s = Math.min(src - 1, Math.max(0, scale * (i + 0.5) - 0.5));
    lo[i] = Math.floor(s);
    hi[i] = Math.min(src - 1, lo[i] + 1);
    frac[i] = s - lo[i];
  }
  return { lo, hi, frac };
}

function checkSize(what: string, length: number, width: number, height: number, channels = 1): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`${what}: bad size ${width}x${height}`);
  }
  if (length !== width * height * channels) throw new RangeError(`${what}: ${length} values for ${width}x${height}x${channels}`);
}

/** Bilinear resize of a single-channel float map (row-major, width * height). */
export function resizeMapBilinear(map: Float32Array, width: number, height: number, newWidth: number, newHeight: number): Float32Array {
  checkSize('resizeMapBilinear', map.length, width, height);
  checkSize('resizeMapBilinear (target)', newWidth * newHeight, newWidth, newHeight);
  return bilinear(map, width, height, 1, 1, newWidth, newHeight, new Float32Array(newWidth * newHeight));
}

/** Bilinear resize of an RGBA image (all four channels, rounded to 8 bits). */
export function resizeImageBilinear(img: RgbaImage, newWidth: number, newHeight: number): RgbaImage {
  checkSize('resizeImageBilinear', img.data.length, img.width, img.height, 4);
  checkSize('resizeImageBilinear (target)', newWidth * newHeight, newWidth, newHeight);
  // Uint8ClampedArray rounds to nearest on assignment.
  const data = bilinear(img.data, img.width, img.height, 4, 4, newWidth, newHeight, new Uint8ClampedArray(newWidth * newHeight * 4));
  return { width: newWidth, height: newHeight, data };
}

/**
 * Bilinear resize of an RGBA image to float RGB (alpha dropped, values 0..255 unrounded),
 * newWidth × newHeight × 3: the values tf.image.resizeBilinear(rgb, size, false, true) gives on
 * the cpu backend, without a float copy of the source (only the output is allocated).
 */
export function resizeRgbaToRgb(img: RgbaImage, newWidth: number, newHeight: number): Float32Array {
  checkSize('resizeRgbaToRgb', img.data.length, img.width, img.height, 4);
  checkSize('resizeRgbaToRgb (target)', newWidth * newHeight, newWidth, newHeight);
  return bilinear(img.data, img.width, img.height, 4, 3, newWidth, newHeight, new Float32Array(newWidth * newHeight * 3));
}

function bilinear<T extends Float32Array | Uint8ClampedArray>(
  src: ArrayLike<number>,
  w: number,
  h: number,
  ch: number,
  outCh: number,
  w2: number,
  h2: number,
  out: T,
): T {
  const xs = taps(w, w2);
  const ys = taps(h, h2);
  let o = 0;
  for (let y = 0; y < h2; y++) {
    const top = ys.lo[y] * w * ch;
    const bot = ys.hi[y] * w * ch;
    const fy = ys.frac[y];
    for (let x = 0; x < w2; x++) {
      const l = xs.lo[x] * ch;
      const r = xs.hi[x] * ch;
      const fx = xs.frac[x];
      for (let c = 0; c < outCh; c++) {
        // Same operation order as tfjs's kernel, so float results agree to the last bits.
        const t = src[top + l + c] + (src[top + r + c] - src[top + l + c]) * fx;
        const b = src[bot + l + c] + (src[bot + r + c] - src[bot + l + c]) * fx;
        out[o++] = t + (b - t) * fy;
      }
    }
  }
  return out;
}

/**
 * Nearest-neighbour resize of a label map (class indices or a 0/1 mask): output pixel i takes the
 * source pixel under its centre, floor((i + 0.5) * src / dst). Returns the same array type.
 */
export function resizeLabelsNearest<T extends Int32Array | Uint8Array>(
  labels: T,
  width: number,
  height: number,
  newWidth: number,
  newHeight: number,
): T {
  checkSize('resizeLabelsNearest', labels.length, width, height);
  checkSize('resizeLabelsNearest (target)', newWidth * newHeight, newWidth, newHeight);
  const out = (labels instanceof Int32Array ? new Int32Array(newWidth * newHeight) : new Uint8Array(newWidth * newHeight)) as T;
  // Integer arithmetic: floor(((2i + 1) * src) / (2 * dst)) has no rounding error.
  const sx = new Int32Array(newWidth);
  for (let x = 0; x < newWidth; x++) sx[x] = Math.floor(((2 * x + 1) * width) / (2 * newWidth));
  for (let y = 0; y < newHeight; y++) {
    const row = Math.floor(((2 * y + 1) * height) / (2 * newHeight)) * width;
    for (let x = 0; x < newWidth; x++) out[y * newWidth + x] = labels[row + sx[x]];
  }
  return out;
}

/** Nearest-neighbour resize of an RGBA image (same pixel-centre rule as resizeLabelsNearest); crisp integer upscaling. */
export function resizeImageNearest(img: RgbaImage, newWidth: number, newHeight: number): RgbaImage {
  checkSize('resizeImageNearest', img.data.length, img.width, img.height, 4);
  checkSize('resizeImageNearest (target)', newWidth * newHeight, newWidth, newHeight);
  // Move whole pixels as 32-bit words.
  const bytes = img.data.byteOffset % 4 === 0 ? img.data : img.data.slice(); // a Uint32Array view needs alignment
  const src = new Uint32Array(bytes.buffer, bytes.byteOffset, img.width * img.height);
  const data = new Uint8ClampedArray(newWidth * newHeight * 4);
  const dst = new Uint32Array(data.buffer);
  const sx = new Int32Array(newWidth);
  for (let x = 0; x < newWidth; x++) sx[x] = Math.floor(((2 * x + 1) * img.width) / (2 * newWidth));
  for (let y = 0; y < newHeight; y++) {
    const row = Math.floor(((2 * y + 1) * img.height) / (2 * newHeight)) * img.width;
    for (let x = 0; x < newWidth; x++) dst[y * newWidth + x] = src[row + sx[x]];
  }
  return { width: newWidth, height: newHeight, data };
}
