/**
 * α across locations (the paper's "compare the weights at different locations"): the cosine
 * similarity of channel-weight vectors, and a 2-D PCA embedding by power iteration.
 */
import { hash32, mulberry32 } from '../data/prng.js';

/** Cosine similarity of every pair of vectors: n × n, row-major. A zero vector has similarity NaN with everything. */
export function cosineMatrix(vectors: ArrayLike<number>[]): Float64Array {
  const n = vectors.length;
  const norms = vectors.map((v) => Math.sqrt(dot(v, v)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const d = norms[i] * norms[j];
      const c = d > 0 ? Math.max(-1, Math.min(1, dot(vectors[i], vectors[j]) / d)) : Number.NaN;
      out[i * n + j] = c;
      out[j * n + i] = c;
    }
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`vectors differ in length (${a.length} vs ${b.length})`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export interface Pca {
  /** The projection of each (centred) vector on the components: n rows of `components` values. */
  coords: number[][];
  /** The unit principal directions. */
  axes: Float64Array[];
  /** Variance along each component. */
  variances: number[];
  /** Variance along each component as a fraction of the total. */
  explained: number[];
}

/**
 * PCA of the rows by power iteration on the covariance matrix with deflation: deterministic
 * (a seeded start vector) and enough for the two or three leading components. Each axis's sign
 * is fixed so that its largest-magnitude entry is positive.
 */
export function pca(vectors: ArrayLike<number>[], components = 2, options: { iterations?: number; seed?: number } = {}): Pca {
  const n = vectors.length;
  if (n === 0) return { coords: [], axes: [], variances: [], explained: [] };
  const d = vectors[0].length;
  const mu = new Float64Array(d);
  for (const v of vectors) for (let j = 0; j < d; j++) mu[j] += v[j] / n;
  const X = vectors.map((v) => Float64Array.from({ length: d }, (_, j) => v[j] - mu[j]));
  const C = new Float64Array(d * d);
  for (const x of X) for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a * d + b] += (x[a] * x[b]) / Math.max(1, n - 1);
  let total = 0;
  for (let a = 0; a < d; a++) total += C[a * d + a];
  const random = mulberry32(hash32(options.seed ?? 0, 0x9ca));
  const iterations = options.iterations ?? 500;
  const axes: Float64Array[] = [];
  const variances: number[] = [];
  for (let c = 0; c < Math.min(components, d); c++) {
    let v = Float64Array.from({ length: d }, () => random() - 0.5);
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      const w = new Float64Array(d);
      for (let a = 0; a < d; a++) {
        let s = 0;
        for (let b = 0; b < d; b++) s += C[a * d + b] * v[b];
        w[a] = s;
      }
      const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      if (norm === 0) break;
      const next = w.map((x) => x / norm);
      const change = next.reduce((s, x, i) => s + Math.abs(x - v[i]), 0);
      v = next;
      lambda = norm;
      if (change < 1e-12) break;
    }
    let big = 0;
    for (let a = 0; a < d; a++) if (Math.abs(v[a]) > Math.abs(v[big])) big = a;
    if (v[big] < 0) v = v.map((x) => -x);
    axes.push(v);
    variances.push(lambda);
    // Deflate: C ← C − λ v vᵀ.
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a * d + b] -= lambda * v[a] * v[b];
  }
  const coords = X.map((x) => axes.map((ax) => ax.reduce((s, w, j) => s + w * x[j], 0)));
  return { coords, axes, variances, explained: variances.map((l) => (total > 0 ? l / total : Number.NaN)) };
}
