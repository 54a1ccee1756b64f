/**
 * Texture patterns for the TextureMNIST-style tiles. A pattern is a grayscale field in 0..1
 * (Float32Array, row-major h*w); `colorize` turns it into RGB with a brightness, contrast and tint.
 *
 * Photo textures (brick, grass, gravel: CC0, 512x512 grayscale) are cropped at a random offset,
 * scale and quarter-turn; the procedural ones are drawn with random period, angle and phase.
 */
import type { Rng } from './prng.js';

export const TEXTURE_NAMES = ['brick', 'grass', 'gravel', 'stripes', 'checker', 'noise', 'dots', 'waves', 'grid'] as const;
export type TextureName = (typeof TEXTURE_NAMES)[number];

/** A decoded grayscale photo texture, values 0..1. */
export interface GrayTexture {
  width: number;
  height: number;
  data: Float32Array;
}

export function textureId(name: TextureName): number {
  return TEXTURE_NAMES.indexOf(name);
}

export function isTextureName(name: string): name is TextureName {
  return (TEXTURE_NAMES as readonly string[]).includes(name);
}

/** Normalises a photo to zero-mean/unit-std then maps ±2 std to 0..1. */
export function normalizePhoto(width: number, height: number, gray: ArrayLike<number>): GrayTexture {
  const n = width * height;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    s += gray[i];
    s2 += gray[i] * gray[i];
  }
  const mean = s / n;
  const std = Math.sqrt(Math.max(1e-12, s2 / n - mean * mean));
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.min(1, Math.max(0, 0.5 + (gray[i] - mean) / (4 * std)));
  return { width, height, data };
}

function cropPhoto(photo: GrayTexture, h: number, w: number, rng: Rng): Float32Array {
  const out = new Float32Array(h * w);
  const scale = Math.exp(rng.uniform(Math.log(0.5), Math.log(1.6)));
  const turn = rng.int(0, 3);
  const span = Math.max(h, w) * scale + 2;
  const ox = rng.uniform(0, Math.max(0, photo.width - span - 1));
  const oy = rng.uniform(0, Math.max(0, photo.height - span - 1));
  const pw = photo.width;
  const d = photo.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let u = x;
      let v = y;
      if (turn === 1) [u, v] = [y, w - 1 - x];
      else if (turn === 2) [u, v] = [w - 1 - x, h - 1 - y];
      else if (turn === 3) [u, v] = [h - 1 - y, x];
      const sx = ox + u * scale;
      const sy = oy + v * scale;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const i = y0 * pw + x0;
      const top = d[i] + (d[i + 1] - d[i]) * fx;
      const bot = d[i + pw] + (d[i + pw + 1] - d[i + pw]) * fx;
      out[y * w + x] = top + (bot - top) * fy;
    }
  }
  return out;
}

function valueNoise(h: number, w: number, rng: Rng, cell: number): Float32Array {
  const gw = Math.ceil(w / cell) + 2;
  const gh = Math.ceil(h / cell) + 2;
  const grid = new Float32Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.next();
  const out = new Float32Array(h * w);
  const ox = rng.uniform(0, 1);
  const oy = rng.uniform(0, 1);
  for (let y = 0; y < h; y++) {
    const gy = y / cell + oy;
    const y0 = Math.floor(gy);
    let fy = gy - y0;
    fy = fy * fy * (3 - 2 * fy);
    for (let x = 0; x < w; x++) {
      const gx = x / cell + ox;
      const x0 = Math.floor(gx);
      let fx = gx - x0;
      fx = fx * fx * (3 - 2 * fx);
      const i = y0 * gw + x0;
      const top = grid[i] + (grid[i + 1] - grid[i]) * fx;
      const bot = grid[i + gw] + (grid[i + gw + 1] - grid[i + gw]) * fx;
      out[y * w + x] = top + (bot - top) * fy;
    }
  }
  return out;
}

/** Draws the 0..1 pattern of texture `name` at size h x w. `scale` = tile size / 64. */
export function drawPattern(
  name: TextureName,
  h: number,
  w: number,
  rng: Rng,
  photos: Record<string, GrayTexture>,
  scale = 1,
): Float32Array {
  const out = new Float32Array(h * w);
  const theta = rng.uniform(0, Math.PI);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  switch (name) {
    case 'brick':
    case 'grass':
    case 'gravel': {
      const photo = photos[name];
      if (!photo) throw new Error(`photo texture '${name}' not loaded`);
      return cropPhoto(photo, h, w, rng);
    }
    case 'stripes': {
      const period = rng.uniform(4, 9) * scale;
      const phase = rng.uniform(0, 2 * Math.PI);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const t = Math.sin((2 * Math.PI * (x * c + y * s)) / period + phase);
          out[y * w + x] = Math.min(1, Math.max(0, 0.5 + 1.5 * t));
        }
      return out;
    }
    case 'checker': {
      const cell = rng.uniform(3, 7) * scale;
      const ph = rng.uniform(0, cell);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const u = Math.floor((x * c + y * s + ph) / cell);
          const v = Math.floor((-x * s + y * c + ph) / cell);
          out[y * w + x] = (u + v) & 1 ? 1 : 0;
        }
      return out;
    }
    case 'noise': {
      const a = valueNoise(h, w, rng, rng.uniform(2, 4) * scale);
      const b = valueNoise(h, w, rng, rng.uniform(6, 10) * scale);
      for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, 0.5 + 1.6 * (0.6 * a[i] + 0.4 * b[i] - 0.5)));
      return out;
    }
    case 'dots': {
      const period = rng.uniform(5, 9) * scale;
      const r = rng.uniform(0.22, 0.36) * period;
      const px = rng.uniform(0, period);
      const py = rng.uniform(0, period);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let u = x * c + y * s + px;
          const v = -x * s + y * c + py;
          const row = Math.floor(v / period);
          if (row & 1) u += period / 2; // hexagonal packing
          const du = u - (Math.floor(u / period) + 0.5) * period;
          const dv = v - (row + 0.5) * period;
          const d = Math.sqrt(du * du + dv * dv);
          out[y * w + x] = Math.min(1, Math.max(0, r - d + 0.5));
        }
      return out;
    }
    case 'waves': {
      const period = rng.uniform(5, 10) * scale;
      const amp = rng.uniform(2, 5) * scale;
      const period2 = rng.uniform(10, 20) * scale;
      const phase = rng.uniform(0, 2 * Math.PI);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const u = x * c + y * s;
          const v = -x * s + y * c;
          const t = Math.sin((2 * Math.PI * (u + amp * Math.sin((2 * Math.PI * v) / period2))) / period + phase);
          out[y * w + x] = 0.5 + 0.5 * t;
        }
      return out;
    }
    case 'grid': {
      const period = rng.uniform(5, 10) * scale;
      const width = rng.uniform(1, 2) * scale;
      const ph = rng.uniform(0, period);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const u = (((x * c + y * s + ph) % period) + period) % period;
          const v = (((-x * s + y * c + ph) % period) + period) % period;
          out[y * w + x] = u < width || v < width ? 1 : 0;
        }
      return out;
    }
  }
}

/** Colour for a pattern: value = mean + contrast * (p - 0.5), plus a per-channel tint. */
export interface Colouring {
  mean: number;
  contrast: number;
  tint: [number, number, number];
}

export function randomColouring(rng: Rng, mean: number, contrast: [number, number] = [0.15, 0.35], tint = 0.12): Colouring {
  return {
    mean,
    contrast: rng.uniform(contrast[0], contrast[1]),
    tint: [rng.uniform(-tint, tint), rng.uniform(-tint, tint), rng.uniform(-tint, tint)],
  };
}

/** Writes the coloured pattern into `rgb` (Float32Array h*w*3, 0..1). */
export function colorize(pattern: Float32Array, col: Colouring, rgb: Float32Array): void {
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const v = col.mean + col.contrast * (pattern[i] - 0.5);
    for (let k = 0; k < 3; k++) {
      const x = v + col.tint[k];
      rgb[i * 3 + k] = x < 0 ? 0 : x > 1 ? 1 : x;
    }
  }
}
