/** Drawing on images: heatmap overlays, label maps, the marker of a pixel and the contour of a region. */
import { createImage, type RgbaImage } from '../image.js';
import { colormapLut, lutIndex, type ColormapName, type Rgb } from './colormap.js';
import { classColor, defaultPalette, type Palette } from './palette.js';

export interface OverlayOptions {
  colormap?: ColormapName;
  /** Weight of the heatmap colour over the image, 0..1 (default 0.5). */
  opacity?: number;
}

function checkMap(what: string, length: number, width: number, height: number): void {
  if (length !== width * height) throw new RangeError(`${what}: ${length} values for a ${width}x${height} image`);
}

/**
 * The image with the heatmap (image-sized, values in [0, 1]) blended over it with a uniform opacity:
 * out = (1 - opacity) · image + opacity · colormap(heat). Opacity 0 gives the image back, 1 the
 * colormapped heatmap. Alpha is the image's. Returns a new image.
 */
export function overlayHeatmap(image: RgbaImage, heatmap: Float32Array, options: OverlayOptions = {}): RgbaImage {
  checkMap('overlayHeatmap', heatmap.length, image.width, image.height);
  const a = Math.min(1, Math.max(0, options.opacity ?? 0.5));
  const lut = colormapLut(options.colormap ?? 'turbo');
  const src = image.data;
  const out = createImage(image.width, image.height);
  const d = out.data;
  for (let i = 0; i < heatmap.length; i++) {
    const k = lutIndex(heatmap[i]) * 3;
    const p = i * 4;
    d[p] = (1 - a) * src[p] + a * lut[k];
    d[p + 1] = (1 - a) * src[p + 1] + a * lut[k + 1];
    d[p + 2] = (1 - a) * src[p + 2] + a * lut[k + 2];
    d[p + 3] = src[p + 3];
  }
  return out;
}

/** The heatmap (width * height values in [0, 1]) as an opaque image in the colour map. */
export function heatmapImage(heatmap: Float32Array, width: number, height: number, colormap: ColormapName = 'turbo'): RgbaImage {
  checkMap('heatmapImage', heatmap.length, width, height);
  const lut = colormapLut(colormap);
  const out = createImage(width, height);
  for (let i = 0; i < heatmap.length; i++) {
    const k = lutIndex(heatmap[i]) * 3;
    out.data.set([lut[k], lut[k + 1], lut[k + 2], 255], i * 4);
  }
  return out;
}

/** A label map (class index per pixel) in class colours, opaque. */
export function labelImage(labels: Int32Array, width: number, height: number, palette: Palette = defaultPalette()): RgbaImage {
  checkMap('labelImage', labels.length, width, height);
  const out = createImage(width, height);
  for (let i = 0; i < labels.length; i++) {
    const [r, g, b] = classColor(palette, labels[i]);
    out.data.set([r, g, b, 255], i * 4);
  }
  return out;
}

export interface MarkerOptions {
  /** Ring radius in pixels (default: 1/32 of the smaller side, at least 5). */
  radius?: number;
  color?: Rgb;
  /** The 1-pixel edge around every stroke, so the marker shows on light and dark alike; null for none. */
  outline?: Rgb | null;
}

/**
 * Draws a sight on pixel (x, y) in place: a ring with four ticks across it; the centre is left
 * clear so the pixel itself stays visible. Parts outside the image are clipped. Returns img.
 */
export function drawMarker(img: RgbaImage, x: number, y: number, options: MarkerOptions = {}): RgbaImage {
  const r = Math.max(2, options.radius ?? Math.max(5, Math.round(Math.min(img.width, img.height) / 32)));
  const color: Rgb = options.color ?? [255, 255, 255];
  const outline: Rgb | null = options.outline === undefined ? [0, 0, 0] : options.outline;
  // Half the stroke width: offsets are whole pixels, so 0.5 → 1-pixel strokes, 1 → 3-pixel ones.
  const hw = r >= 10 ? 1 : 0.5;
  const reach = Math.ceil(1.5 * r) + 2;
  const size = 2 * reach + 1;
  const core = new Uint8Array(size * size);
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const dx = i - reach;
      const dy = j - reach;
      const d = Math.hypot(dx, dy);
      const ring = Math.abs(d - r) <= hw + 0.25;
      const armH = Math.abs(dy) <= hw && Math.abs(dx) >= 0.5 * r && Math.abs(dx) <= 1.5 * r;
      const armV = Math.abs(dx) <= hw && Math.abs(dy) >= 0.5 * r && Math.abs(dy) <= 1.5 * r;
      core[j * size + i] = ring || armH || armV ? 1 : 0;
    }
  }
  const cx = Math.round(x) - reach;
  const cy = Math.round(y) - reach;
  if (outline) paint(img, cx, cy, size, size, dilate8(core, size, size), outline);
  paint(img, cx, cy, size, size, core, color);
  return img;
}

export interface ContourOptions {
  color?: Rgb;
  /** Band width inside the region, in pixels (default: 1 per 256 pixels of the smaller side, at least 1). */
  thickness?: number;
  /** A 1-pixel line just outside the region, for contrast; null for none. */
  outline?: Rgb | null;
}

/**
 * The boundary of a binary mask: in-mask pixels with a 4-neighbour outside it (pixels past the image
 * edge count as outside, so a region touching the edge still gets a closed contour). With thickness
 * t > 1, the in-mask pixels within t steps of the outside.
 */
export function contourMask(mask: Uint8Array, width: number, height: number, thickness = 1): Uint8Array {
  checkMap('contourMask', mask.length, width, height);
  let inner: Uint8Array = Uint8Array.from(mask, (v) => (v ? 1 : 0));
  for (let k = 0; k < thickness; k++) inner = erode4(inner, width, height);
  const band = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) band[i] = mask[i] && !inner[i] ? 1 : 0;
  return band;
}

/** Draws the contour of a binary mask (image-sized) in place. Returns img. */
export function drawContour(img: RgbaImage, mask: Uint8Array, options: ContourOptions = {}): RgbaImage {
  const { width: w, height: h } = img;
  checkMap('drawContour', mask.length, w, h);
  const thickness = options.thickness ?? Math.max(1, Math.round(Math.min(w, h) / 256));
  const outline: Rgb | null = options.outline === undefined ? [0, 0, 0] : options.outline;
  if (outline) {
    const binary = Uint8Array.from(mask, (v) => (v ? 1 : 0));
    const outside = dilate4(binary, w, h);
    for (let i = 0; i < outside.length; i++) outside[i] = outside[i] && !binary[i] ? 1 : 0;
    paint(img, 0, 0, w, h, outside, outline);
  }
  paint(img, 0, 0, w, h, contourMask(mask, w, h, thickness), options.color ?? [255, 255, 255]);
  return img;
}

/** Sets the colour (opaque) where `m` (mw x mh, placed at x0, y0) is set; clips to the image. */
function paint(img: RgbaImage, x0: number, y0: number, mw: number, mh: number, m: Uint8Array, [r, g, b]: Rgb): void {
  for (let j = 0; j < mh; j++) {
    const y = y0 + j;
    if (y < 0 || y >= img.height) continue;
    for (let i = 0; i < mw; i++) {
      const x = x0 + i;
      if (x < 0 || x >= img.width || !m[j * mw + i]) continue;
      const p = (y * img.width + x) * 4;
      img.data[p] = r;
      img.data[p + 1] = g;
      img.data[p + 2] = b;
      img.data[p + 3] = 255;
    }
  }
}

/** Keeps pixels whose 4 neighbours are all set (outside the image = unset). */
function erode4(m: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      out[i] = m[i] && x > 0 && m[i - 1] && x < w - 1 && m[i + 1] && y > 0 && m[i - w] && y < h - 1 && m[i + w] ? 1 : 0;
    }
  }
  return out;
}

/** Sets pixels that are set or have a set 4-neighbour. */
function dilate4(m: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      out[i] = m[i] || (x > 0 && m[i - 1]) || (x < w - 1 && m[i + 1]) || (y > 0 && m[i - w]) || (y < h - 1 && m[i + w]) ? 1 : 0;
    }
  }
  return out;
}

/** Sets pixels that are set or have a set 8-neighbour. */
function dilate8(m: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let dy = -1; dy <= 1 && !v; dy++) {
        for (let dx = -1; dx <= 1 && !v; dx++) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx >= 0 && xx < w && yy >= 0 && yy < h && m[yy * w + xx]) v = 1;
        }
      }
      out[y * w + x] = v;
    }
  }
  return out;
}
