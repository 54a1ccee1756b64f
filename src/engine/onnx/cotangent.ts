/**
 * Objectives on plain arrays: S and ∂S/∂logits on the cached logits (the project's layout,
 * [H, W, C] or [C]), and cotangents laid out as the gradient graphs take them (NCHW, whole or
 * cropped to a window). An objective's `support` box limits every loop to the region: a 64x32
 * box of a 128x256 map is 1/16 of the work of a full pass over the weights.
 */
import { SegGradCamError } from '../../errors.js';
import type { GridBox, Objective, OutputInfo } from '../contract.js';
import { maskBox } from '../../region/objective.js';

/** ∂S/∂logits in the project's layout, and the box outside which it is zero (null: zero everywhere). */
export interface Cotangent {
  nhwc: Float32Array;
  support: GridBox | null;
}

/** Probabilities are the logits' sigmoid (one channel, or a sigmoid model), else their softmax over channels. */
export const sigmoidProbabilities = (output: OutputInfo) => output.channels === 1 || output.activation === 'sigmoid';

/** The flat [start, end) ranges of the weights that may be nonzero: one per row of the support box, or all of them. */
function spans(objective: Objective, output: OutputInfo): Array<[number, number]> {
  const s = objective.support;
  if (output.kind !== 'map' || !s) return [[0, objective.weights.length]];
  const { width: w, channels: c } = output;
  const out: Array<[number, number]> = [];
  for (let y = s[0][0]; y < s[0][1]; y++) out.push([(y * w + s[1][0]) * c, (y * w + s[1][1]) * c]);
  return out;
}

/** Softmax over channels (or sigmoid) of the logits inside the spans, in float64; zero elsewhere. */
function probabilities(logits: Float32Array, output: OutputInfo, ranges: Array<[number, number]>): Float64Array {
  const c = output.channels;
  const p = new Float64Array(logits.length);
  for (const [a, b] of ranges) {
    if (sigmoidProbabilities(output)) {
      for (let i = a; i < b; i++) p[i] = 1 / (1 + Math.exp(-logits[i]));
      continue;
    }
    for (let o = a; o < b; o += c) {
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, logits[o + k]);
      let s = 0;
      for (let k = 0; k < c; k++) s += p[o + k] = Math.exp(logits[o + k] - m);
      for (let k = 0; k < c; k++) p[o + k] /= s;
    }
  }
  return p;
}

/** The values scored (logits, or probabilities in float64) and S = Σ w·y + offset on them (float64 sums). */
function scored(
  logits: Float32Array,
  objective: Objective,
  output: OutputInfo,
): { y: ArrayLike<number>; score: number; ranges: Array<[number, number]> } {
  const w = objective.weights;
  if (w.length !== logits.length) throw new SegGradCamError(`objective has ${w.length} weights; the logits have ${logits.length}`, 'shape');
  const ranges = spans(objective, output);
  const y = objective.on === 'probability' ? probabilities(logits, output, ranges) : logits;
  let s = objective.offset;
  for (const [a, b] of ranges) for (let i = a; i < b; i++) if (w[i] !== 0) s += w[i] * y[i];
  return { y, score: s, ranges };
}

/** S = Σ w·y + offset on logits or probabilities (float64 sums). */
export function scoreOf(logits: Float32Array, objective: Objective, output: OutputInfo): number {
  return scored(logits, objective, output).score;
}

/**
 * ∂S/∂logits and S for an objective, in the project's layout. On logits the cotangent is the
 * weights; on probabilities the softmax (or sigmoid) VJP is applied here, on the cached logits,
 * in float64 — exact, and the compiled graphs then only ever take a logits cotangent.
 */
export function logitsCotangent(logits: Float32Array, objective: Objective, output: OutputInfo): { cotangent: Cotangent; score: number } {
  const { y: p, score, ranges } = scored(logits, objective, output);
  const { support } = weightsCotangent(objective, output);
  if (objective.on === 'logits') return { cotangent: { nhwc: objective.weights, support }, score };
  const w = objective.weights;
  const g = new Float32Array(w.length);
  const c = output.channels;
  for (const [a, b] of ranges) {
    if (sigmoidProbabilities(output)) {
      for (let i = a; i < b; i++) g[i] = w[i] * p[i] * (1 - p[i]);
      continue;
    }
    // A pixel whose weights are all zero gets a zero cotangent (dot = 0), so the support holds.
    for (let o = a; o < b; o += c) {
      let dot = 0;
      for (let k = 0; k < c; k++) dot += w[o + k] * p[o + k];
      for (let k = 0; k < c; k++) g[o + k] = p[o + k] * (w[o + k] - dot);
    }
  }
  return { cotangent: { nhwc: g, support }, score };
}

/**
 * An objective's weights as a logits cotangent (what the compiled graphs take when the objective is
 * on logits, or when the graph applies the softmax VJP itself), with its support: the objective's
 * box, else the bounding box of the nonzero weights; the whole "map" for a vector output.
 */
export function weightsCotangent(objective: Objective, output: OutputInfo): Cotangent {
  const size = output.kind === 'map' ? output.height * output.width * output.channels : output.channels;
  if (objective.weights.length !== size)
    throw new SegGradCamError(`objective has ${objective.weights.length} weights; the logits have ${size}`, 'shape');
  if (output.kind !== 'map')
    return {
      nhwc: objective.weights,
      support: [
        [0, 1],
        [0, 1],
      ],
    };
  return {
    nhwc: objective.weights,
    support: objective.support ?? maskBox(objective.weights, output.height, output.width, output.channels),
  };
}

/**
 * Cotangents ([h, w, c] each) stacked as NCHW [K, c, wh, ww] over the window [y0, y1) × [x0, x1)
 * (the whole map by default): cropping and transposing in one pass over the window only.
 */
export function stackNchw(
  cotangents: Cotangent[],
  h: number,
  w: number,
  c: number,
  win: GridBox = [
    [0, h],
    [0, w],
  ],
): Float32Array {
  const [[y0, y1], [x0, x1]] = win;
  const ph = y1 - y0;
  const pw = x1 - x0;
  const plane = ph * pw;
  const out = new Float32Array(cotangents.length * c * plane);
  cotangents.forEach(({ nhwc, support }, i) => {
    if (!support) return;
    // Only the part of the window inside the support can be nonzero.
    const ya = Math.max(y0, support[0][0]);
    const yb = Math.min(y1, support[0][1]);
    const xa = Math.max(x0, support[1][0]);
    const xb = Math.min(x1, support[1][1]);
    const base = i * c * plane;
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const s = (y * w + x) * c;
        const d = base + (y - y0) * pw + (x - x0);
        for (let k = 0; k < c; k++) out[d + k * plane] = nhwc[s + k];
      }
    }
  });
  return out;
}
