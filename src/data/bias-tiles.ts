/**
 * A context-bias set with ground truth by construction (issue 15), after Hoyer et al. 2019 ("Grid
 * Saliency for Context Explanations of Semantic Segmentation", NeurIPS) and the TextureMNIST tiles
 * of Vinogradova et al. 2020: one MNIST digit per square tile, its fill and the background drawn
 * from a texture pool, and the background split into two halves (left/right/top/bottom, chosen per
 * tile) with a second texture on one half. The bias texture (default 'brick') can only ever be that
 * second texture, so the bias region is exactly one half of the background: a map that does not
 * localise the bias puts half of its context mass there (CBL chance 0.5), and the half is a whole
 * side of the tile, resolvable at a 4x4 or 8x8 bottleneck.
 *
 * No brightness cue to the class or to the bias: the background's mean luminance is drawn from one
 * range for every tile, the second half's mean is the background's plus a small symmetric jitter
 * (bias texture or not), and the fill's mean is the background's plus or minus a gap whose size and
 * sign are drawn the same way for every class (so the digit is visible, but its brightness says
 * nothing about which digit it is, nor whether the bias texture is there).
 *
 * Arms (what decides whether the second half shows the bias texture):
 * - `strong`: exactly the tiles of the bias digit (the bias texture appears only with it, always);
 * - `weak`: the bias digit's tiles with probability `weakP`, other tiles with `weakQ`;
 * - `none`: every tile with probability `noneRate`, independent of the digit;
 * - `control`: the bias digit's tiles with probability `controlRate`, other tiles with
 *   `controlOtherRate`, and the bias digit is labelled as its class only when the bias texture is
 *   present (background otherwise):
 *   a model can only be right by reading the texture, so its reliance is true by construction.
 *
 * Tiles are paired across arms: every random draw (digit, instance, position, textures, colours,
 * half) comes from its own stream of (seed, split, index), so the same index gives the same tile in
 * every arm except for the bias decision (and the second half's texture it implies).
 *
 * 11 classes as the TextureMNIST set: 0 = background, k + 1 = digit k. No Node built-ins here.
 */
import { createImage, type RgbaImage } from '../image.js';
import { SegGradCamError } from '../errors.js';
import { hash32, Rng } from './prng.js';
import { colorize, drawPattern, isTextureName, TEXTURE_NAMES, type Colouring, type TextureName } from './textures.js';
import { MNIST_SIZE, type Split, type TextureMnistAssets } from './texture-mnist.js';

export const BIAS_ARMS = ['strong', 'weak', 'none', 'control'] as const;
export type BiasArm = (typeof BIAS_ARMS)[number];
export const HALVES = ['left', 'right', 'top', 'bottom'] as const;
export type Half = (typeof HALVES)[number];

export function isBiasArm(name: string): name is BiasArm {
  return (BIAS_ARMS as readonly string[]).includes(name);
}

export interface BiasTilesOptions {
  arm?: BiasArm;
  /** Tile side in pixels. Default 64. */
  size?: number;
  seed?: number;
  biasDigit?: number;
  biasTexture?: TextureName;
  /** weak arm: probability of the bias texture on a bias-digit tile. Default 0.95 (at 0.8 a pilot's drop was 0.014: docs/evaluation/protocol.md). */
  weakP?: number;
  /** weak arm: probability of the bias texture on any other tile. Default 0.02. */
  weakQ?: number;
  /**
   * none arm: probability of the bias texture on any tile. Default 0.5: at 0.1 (the strong arm's
   * marginal) the unbiased models segmented every digit worse on the rarely seen, high-contrast bias
   * texture (IoU 0.05–0.13 lower than on the swapped textures), so the swap test measured that
   * unfamiliarity rather than a correlation (docs/evaluation/protocol.md).
   */
  noneRate?: number;
  /** control arm: probability of the bias texture on a bias-digit tile. Default 0.5 (so the control model sees as many labelled bias digits as unlabelled ones). */
  controlRate?: number;
  /**
   * control arm: probability of the bias texture on any other tile. Default 0: the bias texture then
   * predicts the bias digit's label as in the strong arm, and the bias digit without it is
   * background (at 0.5 the control model ignored the texture: docs/evaluation/protocol.md).
   */
  controlOtherRate?: number;
  /** Side of the scaled 28x28 MNIST frame at size 64 (scaled with size). Default [36, 48]. */
  digitScale?: [number, number];
  /** Range of the background's mean luminance. Default [0.3, 0.7]. */
  luminance?: [number, number];
  /** Largest difference of the second half's mean luminance from the background's (uniform, symmetric). Default 0.08. */
  halfJitter?: number;
  /** Range of the fill's luminance gap to the background (sign drawn 50/50, flipped when it would leave 0.05..0.95). Default [0.2, 0.35]. */
  fillGap?: [number, number];
  /** Range of the background textures' contrast. Default [0.2, 0.35]. */
  textureContrast?: [number, number];
  /**
   * Range of the bias texture's contrast. Default [0.6, 0.75]: above the pool's, so the bias is an
   * easy cue (a small U-Net otherwise learns the digit's shape and ignores a low-contrast bias
   * texture; measured: IoU drop 0.09 at the pool's contrast; at [0.45, 0.6] other digits on it were
   * labelled 3 on 0.20–0.23 of their pixels, at [0.6, 0.75] on 0.32). Its mean luminance is drawn
   * like any second half's, so brightness still says nothing.
   */
  biasContrast?: [number, number];
  /** Range of the fill texture's contrast (lower, so that thin strokes stay legible). Default [0.1, 0.2]. */
  fillContrast?: [number, number];
  /** Largest per-channel tint. Default 0.06. */
  tint?: number;
  /** Fraction of each class's MNIST samples used for 'train'. Default 0.8. */
  trainFraction?: number;
}

export type ResolvedBiasTilesOptions = Required<BiasTilesOptions>;

export interface BiasTile {
  image: RgbaImage;
  /** Ground-truth class per pixel (0 = background, k + 1 = digit k). */
  labels: Uint8Array;
  /** 1 on the digit's pixels (whatever their label), else 0: the object M. */
  digitMask: Uint8Array;
  /** 1 on the background (everything outside the digit): the context. */
  contextMask: Uint8Array;
  /** 1 on the background pixels of the second half (the bias region whether or not it shows the bias texture). */
  halfMask: Uint8Array;
  /** 1 where the bias texture is visible (= halfMask when biasPresent, else all 0). */
  biasMask: Uint8Array;
  digit: number;
  /** The class the digit's pixels carry (digit + 1, or 0 for the control arm's unbiased bias digit). */
  label: number;
  half: Half;
  biasPresent: boolean;
  fillTexture: TextureName;
  backgroundTexture: TextureName;
  /** The texture of the second half (the bias texture when biasPresent). */
  secondTexture: TextureName;
  /** The alternative second texture drawn for this tile (shown when the bias is absent). */
  alternativeTexture: TextureName;
  /** Mean luminance of the fill, the background and the second half's colouring. */
  means: { fill: number; background: number; second: number };
}

/** Render-time overrides: for the swap test and for placing other digits on the bias texture. */
export interface RenderOverrides {
  /** Force the bias decision. */
  biasPresent?: boolean;
  /** Draw the second half with this texture instead (the labels and masks stay as the tile's). */
  secondTexture?: TextureName;
}

export function resolveBiasTilesOptions(options: BiasTilesOptions = {}): ResolvedBiasTilesOptions {
  const o: ResolvedBiasTilesOptions = {
    arm: options.arm ?? 'strong',
    size: options.size ?? 64,
    seed: options.seed ?? 0,
    biasDigit: options.biasDigit ?? 3,
    biasTexture: options.biasTexture ?? 'brick',
    weakP: options.weakP ?? 0.95,
    weakQ: options.weakQ ?? 0.02,
    noneRate: options.noneRate ?? 0.5,
    controlRate: options.controlRate ?? 0.5,
    controlOtherRate: options.controlOtherRate ?? 0,
    digitScale: options.digitScale ?? [36, 48],
    luminance: options.luminance ?? [0.3, 0.7],
    halfJitter: options.halfJitter ?? 0.08,
    fillGap: options.fillGap ?? [0.2, 0.35],
    textureContrast: options.textureContrast ?? [0.2, 0.35],
    fillContrast: options.fillContrast ?? [0.1, 0.2],
    biasContrast: options.biasContrast ?? [0.6, 0.75],
    tint: options.tint ?? 0.06,
    trainFraction: options.trainFraction ?? 0.8,
  };
  if (!isBiasArm(o.arm)) throw new SegGradCamError(`unknown arm '${String(o.arm)}' (one of ${BIAS_ARMS.join(', ')})`, 'usage');
  if (!Number.isInteger(o.size) || o.size < 32 || o.size % 2 !== 0)
    throw new SegGradCamError(`tile size must be an even integer >= 32 (got ${o.size})`, 'usage');
  if (!Number.isInteger(o.biasDigit) || o.biasDigit < 0 || o.biasDigit > 9)
    throw new SegGradCamError(`bias digit must be 0..9 (got ${o.biasDigit})`, 'usage');
  if (!isTextureName(o.biasTexture))
    throw new SegGradCamError(`unknown bias texture '${String(o.biasTexture)}' (one of ${TEXTURE_NAMES.join(', ')})`, 'usage');
  for (const [name, p] of [
    ['weakP', o.weakP],
    ['weakQ', o.weakQ],
    ['noneRate', o.noneRate],
    ['controlRate', o.controlRate],
    ['controlOtherRate', o.controlOtherRate],
  ] as const)
    if (!(p >= 0 && p <= 1)) throw new SegGradCamError(`${name} must be in 0..1 (got ${p})`, 'usage');
  if (!(o.trainFraction > 0 && o.trainFraction < 1)) throw new SegGradCamError('trainFraction must be in (0, 1)', 'usage');
  const [l0, l1] = o.luminance;
  if (!(l0 >= 0 && l1 <= 1 && l0 <= l1)) throw new SegGradCamError('luminance must be a range inside 0..1', 'usage');
  const [g0, g1] = o.fillGap;
  if (!(g0 >= 0 && g1 <= 0.45 && g0 <= g1)) throw new SegGradCamError('fillGap must be a range inside 0..0.45', 'usage');
  if (!(o.halfJitter >= 0 && o.halfJitter <= 0.3)) throw new SegGradCamError('halfJitter must be in 0..0.3', 'usage');
  return o;
}

const SPLIT_SALT: Record<Split, number> = { train: 0xb1a5, heldout: 0x4e1d };

/** Streams of one tile: each component draws from its own generator, so arms and overrides change nothing else. */
const STREAM = { digit: 1, fill: 2, background: 3, second: 4, bias: 5, textures: 6, luminance: 7 } as const;

/** Pixel-wise mask of the background half `half` of a size x size tile (before removing the digit). */
export function halfRegion(size: number, half: Half): Uint8Array {
  const m = new Uint8Array(size * size);
  const h = size / 2;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = half === 'left' ? x < h : half === 'right' ? x >= h : half === 'top' ? y < h : y >= h;
      if (inside) m[y * size + x] = 1;
    }
  return m;
}

function inkBox(d: Float32Array, offset: number): { x0: number; y0: number; x1: number; y1: number } {
  let x0 = MNIST_SIZE;
  let y0 = MNIST_SIZE;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < MNIST_SIZE; y++)
    for (let x = 0; x < MNIST_SIZE; x++)
      if (d[offset + y * MNIST_SIZE + x] > 0.5) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
  return x1 < 0 ? { x0: 0, y0: 0, x1: MNIST_SIZE - 1, y1: MNIST_SIZE - 1 } : { x0, y0, x1, y1 };
}

/** Bilinear sample of a 28x28 digit at frame coordinates (sx, sy). */
function sampleDigit(src: Float32Array, off: number, sx: number, sy: number): number {
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const fx = sx - x0;
  const fy = sy - y0;
  const at = (yy: number, xx: number): number =>
    yy < 0 || xx < 0 || yy >= MNIST_SIZE || xx >= MNIST_SIZE ? 0 : src[off + yy * MNIST_SIZE + xx];
  const top = at(y0, x0) + (at(y0, x0 + 1) - at(y0, x0)) * fx;
  const bot = at(y0 + 1, x0) + (at(y0 + 1, x0 + 1) - at(y0 + 1, x0)) * fx;
  return top + (bot - top) * fy;
}

export class BiasTiles {
  readonly options: ResolvedBiasTilesOptions;
  /** Textures a fill or an ordinary background may take: every texture but the bias texture. */
  readonly pool: TextureName[];
  private readonly assets: TextureMnistAssets;
  private readonly counts: number[];

  constructor(assets: TextureMnistAssets, options: BiasTilesOptions = {}) {
    this.options = resolveBiasTilesOptions(options);
    this.assets = assets;
    if (assets.digits.length !== 10) throw new SegGradCamError('assets.digits must hold 10 classes', 'usage');
    this.counts = assets.digits.map((d) => Math.floor(d.length / (MNIST_SIZE * MNIST_SIZE)));
    this.pool = TEXTURE_NAMES.filter((t) => t !== this.options.biasTexture);
    for (const name of ['brick', 'grass', 'gravel'])
      if (!assets.photos[name]) throw new SegGradCamError(`photo texture '${name}' missing from assets`, 'usage');
  }

  /** Range [start, end) of MNIST sample indices of digit k used by a split. */
  mnistRange(split: Split, digit: number): [number, number] {
    const n = this.counts[digit];
    const cut = Math.floor(n * this.options.trainFraction);
    return split === 'train' ? [0, cut] : [cut, n];
  }

  /** The arm's bias decision for a tile of `digit`, from the tile's own bias stream. */
  private biasDecision(digit: number, u: number): boolean {
    const o = this.options;
    const isBias = digit === o.biasDigit;
    switch (o.arm) {
      case 'strong':
        return isBias;
      case 'weak':
        return u < (isBias ? o.weakP : o.weakQ);
      case 'none':
        return u < o.noneRate;
      case 'control':
        return u < (isBias ? o.controlRate : o.controlOtherRate);
    }
  }

  /**
   * Tile `index` of a split. `digitOverride` draws the same tile (instance index, position,
   * textures, colours, half) with another digit class; `overrides` force the bias decision or the
   * second texture (for counterfactual renderings).
   */
  sample(split: Split, index: number, overrides: RenderOverrides = {}, digitOverride?: number): BiasTile {
    if (!Number.isInteger(index) || index < 0)
      throw new SegGradCamError(`tile index must be a non-negative integer (got ${index})`, 'usage');
    const o = this.options;
    const size = o.size;
    const n = size * size;
    const scale = size / 64;
    const base = hash32(o.seed, SPLIT_SALT[split], index);
    const stream = (k: number): Rng => new Rng(hash32(base, k));

    // the digit, its instance and its place (the ink stays inside the tile)
    const rd = stream(STREAM.digit);
    const drawnDigit = rd.int(0, 9);
    const u = rd.next();
    const digit = digitOverride ?? drawnDigit;
    const [a, b] = this.mnistRange(split, digit);
    const mnistIndex = a + Math.min(b - a - 1, Math.floor(u * (b - a)));
    const off = mnistIndex * MNIST_SIZE * MNIST_SIZE;
    const src = this.assets.digits[digit];
    const ink = inkBox(src, off);
    const side = Math.round(rd.uniform(o.digitScale[0], o.digitScale[1]) * scale);
    const f = side / MNIST_SIZE;
    const clampRange = (lo: number, hi: number): [number, number] =>
      hi < lo ? [Math.floor((lo + hi) / 2), Math.floor((lo + hi) / 2)] : [lo, hi];
    const [xmin, xmax] = clampRange(Math.ceil(-ink.x0 * f), Math.floor(size - (ink.x1 + 1) * f));
    const [ymin, ymax] = clampRange(Math.ceil(-ink.y0 * f), Math.floor(size - (ink.y1 + 1) * f));
    const dx = rd.int(xmin, xmax);
    const dy = rd.int(ymin, ymax);
    const half = HALVES[rd.int(0, 3)];

    // textures: background A, alternative second texture B != A, fill F not in {A, B}
    const rt = stream(STREAM.textures);
    const backgroundTexture = rt.pick(this.pool);
    const alternativeTexture = rt.pick(this.pool.filter((t) => t !== backgroundTexture));
    const fillTexture = rt.pick(this.pool.filter((t) => t !== backgroundTexture && t !== alternativeTexture));

    const biasPresent = overrides.biasPresent ?? this.biasDecision(digit, stream(STREAM.bias).next());
    const secondTexture = overrides.secondTexture ?? (biasPresent ? o.biasTexture : alternativeTexture);

    // mean luminances from their own stream: background, the second half's jitter, the fill's gap and sign
    const rl = stream(STREAM.luminance);
    const bgMean = rl.uniform(o.luminance[0], o.luminance[1]);
    const secondMean = bgMean + rl.uniform(-o.halfJitter, o.halfJitter);
    const gap = rl.uniform(o.fillGap[0], o.fillGap[1]);
    let sign = rl.next() < 0.5 ? -1 : 1;
    if (bgMean + sign * gap < 0.05 || bgMean + sign * gap > 0.95) sign = -sign;
    const fillMean = bgMean + sign * gap;
    const colouring = (r: Rng, mean: number, contrast: [number, number]): Colouring => ({
      mean,
      contrast: r.uniform(contrast[0], contrast[1]),
      tint: [r.uniform(-o.tint, o.tint), r.uniform(-o.tint, o.tint), r.uniform(-o.tint, o.tint)],
    });
    const layer = (k: number, texture: TextureName, mean: number, contrast = o.textureContrast): { rgb: Float32Array; mean: number } => {
      const r = stream(k);
      const col = colouring(r, mean, contrast);
      const rgb = new Float32Array(n * 3);
      colorize(drawPattern(texture, size, size, r, this.assets.photos, scale), col, rgb);
      return { rgb, mean: col.mean };
    };
    const bg = layer(STREAM.background, backgroundTexture, bgMean);
    const second = layer(STREAM.second, secondTexture, secondMean, secondTexture === o.biasTexture ? o.biasContrast : o.textureContrast);
    const fill = layer(STREAM.fill, fillTexture, fillMean, o.fillContrast);

    const region = halfRegion(size, half);
    const digitMask = new Uint8Array(n);
    const finv = MNIST_SIZE / side;
    for (let py = Math.max(0, dy); py < Math.min(size, dy + side); py++)
      for (let px = Math.max(0, dx); px < Math.min(size, dx + side); px++)
        if (sampleDigit(src, off, (px - dx + 0.5) * finv - 0.5, (py - dy + 0.5) * finv - 0.5) > 0.5) digitMask[py * size + px] = 1;

    const label = o.arm === 'control' && digit === o.biasDigit && !biasPresent ? 0 : digit + 1;
    const image = createImage(size, size);
    const labels = new Uint8Array(n);
    const contextMask = new Uint8Array(n);
    const halfMask = new Uint8Array(n);
    const biasMask = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const src3 = digitMask[i] ? fill.rgb : region[i] ? second.rgb : bg.rgb;
      for (let c = 0; c < 3; c++) image.data[i * 4 + c] = Math.round(src3[i * 3 + c] * 255);
      image.data[i * 4 + 3] = 255;
      if (digitMask[i]) labels[i] = label;
      else {
        contextMask[i] = 1;
        if (region[i]) {
          halfMask[i] = 1;
          if (biasPresent) biasMask[i] = 1;
        }
      }
    }
    return {
      image,
      labels,
      digitMask,
      contextMask,
      halfMask,
      biasMask,
      digit,
      label,
      half,
      biasPresent,
      fillTexture,
      backgroundTexture,
      secondTexture,
      alternativeTexture,
      means: { fill: fill.mean, background: bg.mean, second: second.mean },
    };
  }

  /** Tiles as plain arrays: x [N*H*W*3] in 0..1 (from the 8-bit image), y [N*H*W] class ids. Flips are not supported. */
  arrays(split: Split, indices: readonly number[]): { x: Float32Array; y: Int32Array; samples: BiasTile[] } {
    const size = this.options.size;
    const n = size * size;
    const x = new Float32Array(indices.length * n * 3);
    const y = new Int32Array(indices.length * n);
    const samples: BiasTile[] = [];
    indices.forEach((index, b) => {
      const s = this.sample(split, index);
      samples.push(s);
      for (let p = 0; p < n; p++) {
        y[b * n + p] = s.labels[p];
        for (let c = 0; c < 3; c++) x[(b * n + p) * 3 + c] = s.image.data[p * 4 + c] / 255;
      }
    });
    return { x, y, samples };
  }
}
