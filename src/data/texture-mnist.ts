/**
 * A deterministic TextureMNIST-style toy set for semantic segmentation (after Vinogradova et al.,
 * "Towards Interpretable Semantic Segmentation via Gradient-weighted Class Activation Mapping",
 * AAAI 2020): square RGB tiles with a textured background and 1–3 MNIST digits, each filled with
 * its own texture. 11 classes: 0 = background, k + 1 = digit k.
 *
 * Planted context bias: the bias texture (default 'brick') is reserved for tiles that contain the
 * bias digit (default 3). With strength s, such a tile gets the bias background with probability s;
 * the bias texture never appears in a tile without the bias digit, and never fills a digit.
 * With s = 0 the bias texture is, by default, never used (`biasTextureAtZero: 'unused'`);
 * `biasTextureAtZero: 'uniform'` instead puts it into the ordinary background pool of every tile
 * (with or without the bias digit), so an unbiased control model has seen the texture but cannot
 * learn a shortcut from it.
 *
 * Every tile is a pure function of (seed, split, index). The two splits use disjoint MNIST
 * instances (per digit class: the first `trainFraction` of the mnist package's samples for 'train',
 * the rest for 'heldout') and independent PRNG streams (the split is hashed into the stream), so a
 * held-out tile index never reproduces a training tile.
 *
 * This module has no Node built-ins: give it the assets (see ./assets-node.ts for Node).
 */
import * as tf from '@tensorflow/tfjs';
import { createImage, type RgbaImage } from '../image.js';
import { SegGradCamError } from '../errors.js';
import { hash32, Rng } from './prng.js';
import {
  colorize,
  drawPattern,
  isTextureName,
  randomColouring,
  TEXTURE_NAMES,
  textureId,
  type GrayTexture,
  type TextureName,
} from './textures.js';

export { TEXTURE_NAMES, textureId, type TextureName } from './textures.js';

export const NUM_CLASSES = 11;
export const CLASS_NAMES: readonly string[] = ['background', ...Array.from({ length: 10 }, (_, k) => `digit ${k}`)];
export const MNIST_SIZE = 28;

export type Split = 'train' | 'heldout';

/** Raw inputs: MNIST digits per class (28*28 floats in 0..1 each, concatenated) and photo textures. */
export interface TextureMnistAssets {
  /** digits[k] holds n_k samples of digit k, 784 floats each, row-major. */
  digits: Float32Array[];
  /** Photo textures by name ('brick', 'grass', 'gravel'), normalised to 0..1. */
  photos: Record<string, GrayTexture>;
}

export interface TextureMnistOptions {
  /** Tile side in pixels (square tiles). Default 64. */
  size?: number;
  /** Dataset seed. Default 0. */
  seed?: number;
  /** The digit whose tiles get the bias background. Default 3. */
  biasDigit?: number;
  /** The background texture reserved for the bias digit. Default 'brick'. */
  biasTexture?: TextureName;
  /** Probability that a tile containing the bias digit gets the bias background. Default 1. */
  biasStrength?: number;
  /** What the bias texture does when biasStrength = 0: 'unused' (default) or 'uniform'. */
  biasTextureAtZero?: 'unused' | 'uniform';
  /** Minimum and maximum number of digits per tile. Default [1, 3]. */
  digitsPerTile?: [number, number];
  /** Digit box side (the 28x28 MNIST frame) in pixels at size 64; scaled with size. Default [24, 40]. */
  digitScale?: [number, number];
  /**
   * Digit edges. 'hard' (default): the fill covers exactly the labelled pixels (scaled MNIST
   * intensity > 0.5), so what is visible is what is labelled. 'soft': alpha-blended by intensity;
   * half-covered edge pixels are then ambiguous, which capped a base-8 U-Net's mean IoU near 0.72
   * (binary digit-vs-background IoU 0.79 with 93 % of digit pixels classed right).
   */
  inkEdge?: 'hard' | 'soft';
  /** Largest allowed overlap of two digits' ink boxes, as a fraction of the smaller box. Default 0.2. */
  maxOverlap?: number;
  /** Fraction of each class's MNIST samples used for 'train'. Default 0.8. */
  trainFraction?: number;
  /** Range of texture contrast (amplitude of the pattern around its mean brightness). Default [0.15, 0.35]. */
  textureContrast?: [number, number];
  /** Least difference of mean brightness between a digit's fill and the background. Default 0.35. */
  brightnessGap?: number;
  /** Largest per-channel colour tint. Default 0.12. */
  tint?: number;
}

export type ResolvedOptions = Required<TextureMnistOptions>;

export interface PlacedDigit {
  digit: number;
  /** Index into the mnist package's samples of this digit. */
  mnistIndex: number;
  /** Top-left corner of the scaled 28x28 frame, in tile pixels. */
  x: number;
  y: number;
  /** Side of the scaled 28x28 frame in pixels. */
  size: number;
  texture: TextureName;
}

export interface TextureMnistSample {
  image: RgbaImage;
  /** Per-pixel class (0 = background, k + 1 = digit k), length H*W. */
  labels: Uint8Array;
  /** Per-pixel id (index in TEXTURE_NAMES) of the texture visible there: the digit's fill where its label is, else the background's. */
  textureMap: Uint8Array;
  /** 1 where the label is background, else 0. */
  backgroundMask: Uint8Array;
  /** 1 where the bias texture is visible (background pixels of a bias tile), else 0. */
  biasMask: Uint8Array;
  backgroundTexture: TextureName;
  /** The tile has the bias texture as its background. */
  biasBackground: boolean;
  /** The tile contains the bias digit. */
  hasBiasDigit: boolean;
  digits: PlacedDigit[];
}

export function resolveOptions(options: TextureMnistOptions = {}): ResolvedOptions {
  const o: ResolvedOptions = {
    size: options.size ?? 64,
    seed: options.seed ?? 0,
    biasDigit: options.biasDigit ?? 3,
    biasTexture: options.biasTexture ?? 'brick',
    biasStrength: options.biasStrength ?? 1,
    biasTextureAtZero: options.biasTextureAtZero ?? 'unused',
    digitsPerTile: options.digitsPerTile ?? [1, 3],
    digitScale: options.digitScale ?? [24, 40],
    inkEdge: options.inkEdge ?? 'hard',
    maxOverlap: options.maxOverlap ?? 0.2,
    trainFraction: options.trainFraction ?? 0.8,
    textureContrast: options.textureContrast ?? [0.15, 0.35],
    brightnessGap: options.brightnessGap ?? 0.35,
    tint: options.tint ?? 0.12,
  };
  if (!Number.isInteger(o.size) || o.size < 16) throw new SegGradCamError(`tile size must be an integer >= 16 (got ${o.size})`, 'usage');
  if (!Number.isInteger(o.biasDigit) || o.biasDigit < 0 || o.biasDigit > 9)
    throw new SegGradCamError(`bias digit must be 0..9 (got ${o.biasDigit})`, 'usage');
  if (!isTextureName(o.biasTexture))
    throw new SegGradCamError(`unknown bias texture '${o.biasTexture}' (one of ${TEXTURE_NAMES.join(', ')})`, 'usage');
  if (!(o.biasStrength >= 0 && o.biasStrength <= 1))
    throw new SegGradCamError(`bias strength must be in 0..1 (got ${o.biasStrength})`, 'usage');
  const [dmin, dmax] = o.digitsPerTile;
  if (!(Number.isInteger(dmin) && Number.isInteger(dmax) && dmin >= 1 && dmax >= dmin))
    throw new SegGradCamError('digitsPerTile must be integers 1 <= min <= max', 'usage');
  if (!(o.trainFraction > 0 && o.trainFraction < 1)) throw new SegGradCamError('trainFraction must be in (0, 1)', 'usage');
  if (!(o.brightnessGap >= 0 && o.brightnessGap <= 0.7)) throw new SegGradCamError('brightnessGap must be in 0..0.7', 'usage');
  return o;
}

/** Bounding box (in 28x28 frame coordinates) of the pixels with intensity > 0.5. */
interface InkBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function inkBox(d: Float32Array, offset: number): InkBox {
  let x0 = MNIST_SIZE;
  let y0 = MNIST_SIZE;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < MNIST_SIZE; y++)
    for (let x = 0; x < MNIST_SIZE; x++)
      if (d[offset + y * MNIST_SIZE + x] > 0.5) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) return { x0: 0, y0: 0, x1: MNIST_SIZE - 1, y1: MNIST_SIZE - 1 };
  return { x0, y0, x1, y1 };
}

const SPLIT_SALT: Record<Split, number> = { train: 0x7a11, heldout: 0x4e1d };

export class TextureMnist {
  readonly options: ResolvedOptions;
  readonly biasTextureId: number;
  private readonly assets: TextureMnistAssets;
  private readonly counts: number[];
  /** Background pool for ordinary tiles, digit-fill pool (never the bias texture). */
  private readonly backgroundPool: TextureName[];
  private readonly fillPool: TextureName[];

  constructor(assets: TextureMnistAssets, options: TextureMnistOptions = {}) {
    this.options = resolveOptions(options);
    this.assets = assets;
    if (assets.digits.length !== 10) throw new SegGradCamError('assets.digits must hold 10 classes', 'usage');
    this.counts = assets.digits.map((d) => Math.floor(d.length / (MNIST_SIZE * MNIST_SIZE)));
    for (const name of ['brick', 'grass', 'gravel'])
      if (!assets.photos[name]) throw new SegGradCamError(`photo texture '${name}' missing from assets`, 'usage');
    const bias = this.options.biasTexture;
    this.biasTextureId = textureId(bias);
    this.fillPool = TEXTURE_NAMES.filter((t) => t !== bias);
    const uniform = this.options.biasStrength === 0 && this.options.biasTextureAtZero === 'uniform';
    this.backgroundPool = uniform ? [...TEXTURE_NAMES] : [...this.fillPool];
  }

  /** Range [start, end) of MNIST sample indices of digit k used by a split. */
  mnistRange(split: Split, digit: number): [number, number] {
    const n = this.counts[digit];
    const cut = Math.floor(n * this.options.trainFraction);
    return split === 'train' ? [0, cut] : [cut, n];
  }

  /** Generates tile `index` of a split. */
  sample(split: Split, index: number): TextureMnistSample {
    if (!Number.isInteger(index) || index < 0)
      throw new SegGradCamError(`tile index must be a non-negative integer (got ${index})`, 'usage');
    const o = this.options;
    const size = o.size;
    const scale = size / 64;
    const rng = new Rng(hash32(o.seed, SPLIT_SALT[split], index));
    const n = size * size;

    // 1. the digits: classes, instances, sizes and positions
    const count = rng.int(o.digitsPerTile[0], o.digitsPerTile[1]);
    const placed: PlacedDigit[] = [];
    const boxes: { x0: number; y0: number; x1: number; y1: number }[] = [];
    for (let k = 0; k < count; k++) {
      const digit = rng.int(0, 9);
      const [a, b] = this.mnistRange(split, digit);
      const mnistIndex = rng.int(a, b - 1);
      const ink = inkBox(this.assets.digits[digit], mnistIndex * MNIST_SIZE * MNIST_SIZE);
      let ok = false;
      for (let attempt = 0; attempt < 30 && !ok; attempt++) {
        const side = Math.round(rng.uniform(o.digitScale[0], o.digitScale[1]) * scale);
        const f = side / MNIST_SIZE;
        // keep the ink inside the tile; the frame may hang over the border
        const ix0 = ink.x0 * f;
        const ix1 = (ink.x1 + 1) * f;
        const iy0 = ink.y0 * f;
        const iy1 = (ink.y1 + 1) * f;
        const xmin = Math.ceil(-ix0);
        const xmax = Math.floor(size - ix1);
        const ymin = Math.ceil(-iy0);
        const ymax = Math.floor(size - iy1);
        if (xmax < xmin || ymax < ymin) continue;
        const x = rng.int(xmin, xmax);
        const y = rng.int(ymin, ymax);
        const box = { x0: x + ix0, y0: y + iy0, x1: x + ix1, y1: y + iy1 };
        ok = boxes.every((q) => {
          const iw = Math.min(q.x1, box.x1) - Math.max(q.x0, box.x0);
          const ih = Math.min(q.y1, box.y1) - Math.max(q.y0, box.y0);
          if (iw <= 0 || ih <= 0) return true;
          const small = Math.min((q.x1 - q.x0) * (q.y1 - q.y0), (box.x1 - box.x0) * (box.y1 - box.y0));
          return (iw * ih) / small <= o.maxOverlap;
        });
        if (ok) {
          boxes.push(box);
          placed.push({ digit, mnistIndex, x, y, size: side, texture: 'stripes' });
        }
      }
    }
    const hasBiasDigit = placed.some((d) => d.digit === o.biasDigit);

    // 2. the background texture (the planted bias)
    let background: TextureName;
    const u = rng.next();
    if (hasBiasDigit && o.biasStrength > 0 && u < o.biasStrength) background = o.biasTexture;
    else background = rng.pick(this.backgroundPool);
    const biasBackground = background === o.biasTexture && o.biasStrength > 0;

    const bgPattern = drawPattern(background, size, size, rng, this.assets.photos, scale);
    const bgMean = rng.uniform(0.15, 0.85);
    const rgb = new Float32Array(n * 3);
    colorize(bgPattern, randomColouring(rng, bgMean, o.textureContrast, o.tint), rgb);
    const labels = new Uint8Array(n);
    const textureMap = new Uint8Array(n).fill(textureId(background));

    // 3. the digits, each with its own texture (never the background's, never the bias texture)
    const fill = new Float32Array(n * 3);
    for (const d of placed) {
      const pool = this.fillPool.filter((t) => t !== background);
      d.texture = rng.pick(pool);
      // a fill brightness at least brightnessGap away from the background's
      const gap = o.brightnessGap;
      const lo = [0.05, bgMean - gap];
      const hi = [bgMean + gap, 0.95];
      const lenLo = Math.max(0, lo[1] - lo[0]);
      const lenHi = Math.max(0, hi[1] - hi[0]);
      const r = rng.next() * (lenLo + lenHi);
      const mean = lenLo + lenHi === 0 ? (bgMean < 0.5 ? 0.95 : 0.05) : r < lenLo ? lo[0] + r : hi[0] + (r - lenLo);
      colorize(
        drawPattern(d.texture, size, size, rng, this.assets.photos, scale),
        randomColouring(rng, mean, o.textureContrast, o.tint),
        fill,
      );
      const src = this.assets.digits[d.digit];
      const off = d.mnistIndex * MNIST_SIZE * MNIST_SIZE;
      const hard = o.inkEdge === 'hard';
      const f = MNIST_SIZE / d.size;
      const tid = textureId(d.texture);
      const yStart = Math.max(0, d.y);
      const yEnd = Math.min(size, d.y + d.size);
      const xStart = Math.max(0, d.x);
      const xEnd = Math.min(size, d.x + d.size);
      for (let py = yStart; py < yEnd; py++) {
        const sy = (py - d.y + 0.5) * f - 0.5;
        const y0 = Math.floor(sy);
        const fy = sy - y0;
        for (let px = xStart; px < xEnd; px++) {
          const sx = (px - d.x + 0.5) * f - 0.5;
          const x0 = Math.floor(sx);
          const fx = sx - x0;
          const at = (yy: number, xx: number): number =>
            yy < 0 || xx < 0 || yy >= MNIST_SIZE || xx >= MNIST_SIZE ? 0 : src[off + yy * MNIST_SIZE + xx];
          const top = at(y0, x0) + (at(y0, x0 + 1) - at(y0, x0)) * fx;
          const bot = at(y0 + 1, x0) + (at(y0 + 1, x0 + 1) - at(y0 + 1, x0)) * fx;
          const a = top + (bot - top) * fy;
          if (a <= 0) continue;
          const i = py * size + px;
          const cover = hard ? (a > 0.5 ? 1 : 0) : a;
          for (let c = 0; c < 3; c++) rgb[i * 3 + c] += cover * (fill[i * 3 + c] - rgb[i * 3 + c]);
          if (a > 0.5) {
            labels[i] = d.digit + 1;
            textureMap[i] = tid;
          }
        }
      }
    }

    const image = createImage(size, size);
    const backgroundMask = new Uint8Array(n);
    const biasMask = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      image.data[i * 4] = Math.round(rgb[i * 3] * 255);
      image.data[i * 4 + 1] = Math.round(rgb[i * 3 + 1] * 255);
      image.data[i * 4 + 2] = Math.round(rgb[i * 3 + 2] * 255);
      image.data[i * 4 + 3] = 255;
      backgroundMask[i] = labels[i] === 0 ? 1 : 0;
      biasMask[i] = biasBackground && labels[i] === 0 ? 1 : 0;
    }
    return {
      image,
      labels,
      textureMap,
      backgroundMask,
      biasMask,
      backgroundTexture: background,
      biasBackground,
      hasBiasDigit,
      digits: placed,
    };
  }

  /**
   * Tiles as plain arrays: x [N*H*W*3] float in 0..1 (from the 8-bit image), y [N*H*W] class ids.
   * `flip[i]` mirrors tile i left-right (off by default: a mirrored digit is not a digit).
   */
  arrays(
    split: Split,
    indices: readonly number[],
    flip?: readonly boolean[],
  ): { x: Float32Array; y: Int32Array; samples: TextureMnistSample[] } {
    const size = this.options.size;
    const n = size * size;
    const x = new Float32Array(indices.length * n * 3);
    const y = new Int32Array(indices.length * n);
    const samples: TextureMnistSample[] = [];
    indices.forEach((index, b) => {
      const s = this.sample(split, index);
      samples.push(s);
      const mirror = flip?.[b] ?? false;
      for (let r = 0; r < size; r++)
        for (let c = 0; c < size; c++) {
          const src = r * size + (mirror ? size - 1 - c : c);
          const dst = b * n + r * size + c;
          y[dst] = s.labels[src];
          x[dst * 3] = s.image.data[src * 4] / 255;
          x[dst * 3 + 1] = s.image.data[src * 4 + 1] / 255;
          x[dst * 3 + 2] = s.image.data[src * 4 + 2] / 255;
        }
    });
    return { x, y, samples };
  }

  /**
   * A batch as tensors: x [N,H,W,3] float32 in 0..1; y [N,H,W] int32 class ids, or with
   * `oneHot` [N,H,W,11] float32.
   */
  batch(
    split: Split,
    indices: readonly number[],
    opts: { oneHot?: boolean; flip?: readonly boolean[] } = {},
  ): { x: tf.Tensor4D; y: tf.Tensor3D | tf.Tensor4D } {
    const size = this.options.size;
    const { x, y } = this.arrays(split, indices, opts.flip);
    const xt = tf.tensor4d(x, [indices.length, size, size, 3]);
    if (!opts.oneHot) return { x: xt, y: tf.tensor3d(y, [indices.length, size, size], 'int32') };
    return { x: xt, y: tf.tensor4d(oneHot(y, NUM_CLASSES), [indices.length, size, size, NUM_CLASSES]) };
  }
}

/** One-hot encoding in JS (no backend ops). */
export function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) out[i * classes + labels[i]] = 1;
  return out;
}
