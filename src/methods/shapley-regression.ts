import { SegGradCamError } from '../errors.js';

/**
 * The Shapley kernel weight of a coalition of size s among M features (Lundberg & Lee 2017, Thm. 2):
 * π(s) = (M − 1) / (C(M, s)·s·(M − s)), for 0 < s < M (the empty and full coalitions are constraints, not samples).
 */
export function shapleyKernel(M: number, s: number): number {
  return (M - 1) / (binomial(M, s) * s * (M - s));
}

export function binomial(n: number, k: number): number {
  const m = Math.min(k, n - k);
  let r = 1;
  for (let i = 1; i <= m; i++) r = (r * (n - m + i)) / i;
  return r;
}

/** Coalitions (each a 0/1 array of length M) and their regression weights. */
export interface Coalitions {
  masks: Uint8Array[];
  weights: Float64Array;
}

/**
 * The coalitions KernelSHAP evaluates. When every proper non-empty coalition fits the budget (2^M − 2 ≤ samples)
 * all are enumerated with weight π(|z|): the regression then gives the exact Shapley values. Otherwise `samples`
 * coalitions are drawn in complementary pairs (z and 1 − z, Covert & Lee 2021): a size s with probability
 * ∝ C(M, s)·π(s) = (M − 1)/(s(M − s)), then a uniform subset of that size; each then weighs 1 (the kernel is in the
 * sampling distribution). `random` is a seeded PRNG in [0, 1).
 */
export function coalitions(M: number, samples: number, random: () => number): Coalitions {
  if (M < 1) throw new SegGradCamError('KernelSHAP needs at least one segment', 'usage');
  if (M < 31 && 2 ** M - 2 <= samples) {
    const masks: Uint8Array[] = [];
    const weights: number[] = [];
    for (let bits = 1; bits < 2 ** M - 1; bits++) {
      const z = Uint8Array.from({ length: M }, (_, i) => (bits >> i) & 1);
      masks.push(z);
      weights.push(
        shapleyKernel(
          M,
          z.reduce((a, b) => a + b, 0),
        ),
      );
    }
    return { masks, weights: Float64Array.from(weights) };
  }
  const sizes = Array.from({ length: M - 1 }, (_, i) => (M - 1) / ((i + 1) * (M - 1 - i)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const masks: Uint8Array[] = [];
  while (masks.length < samples) {
    let u = random() * total;
    let s = 1;
    while (s < M - 1 && u >= sizes[s - 1]) u -= sizes[s++ - 1];
    // A uniform subset of size s (partial Fisher–Yates).
    const order = Array.from({ length: M }, (_, i) => i);
    for (let i = 0; i < s; i++) {
      const j = i + Math.floor(random() * (M - i));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const z = new Uint8Array(M);
    for (let i = 0; i < s; i++) z[order[i]] = 1;
    masks.push(z);
    if (masks.length < samples) masks.push(z.map((v) => 1 - v));
  }
  return { masks, weights: new Float64Array(masks.length).fill(1) };
}

/**
 * φ minimising Σ_n w_n (y_n − z_n·φ)² subject to Σ_i φ_i = total (KernelSHAP's efficiency constraint), where
 * y_n = f(z_n) − f(∅) and total = f(1) − f(∅). The constraint eliminates φ_M = total − Σ_{i<M} φ_i; the rest solve
 * the weighted normal equations in float64 (Gaussian elimination, partial pivoting). A tiny ridge (1e-12 of the
 * diagonal's scale) keeps features that no coalition separates solvable: they share their part equally.
 */
export function constrainedShapley(masks: Uint8Array[], weights: Float64Array, y: Float64Array, total: number): Float64Array {
  const M = masks[0]?.length ?? 0;
  if (M === 1) return Float64Array.of(total);
  const K = M - 1;
  const A = new Float64Array(K * K);
  const b = new Float64Array(K);
  const row = new Float64Array(K);
  masks.forEach((z, n) => {
    const last = z[M - 1];
    for (let i = 0; i < K; i++) row[i] = z[i] - last;
    const target = y[n] - last * total;
    const w = weights[n];
    for (let i = 0; i < K; i++) {
      if (row[i] === 0) continue;
      b[i] += w * row[i] * target;
      for (let j = 0; j < K; j++) A[i * K + j] += w * row[i] * row[j];
    }
  });
  let diag = 0;
  for (let i = 0; i < K; i++) diag = Math.max(diag, A[i * K + i]);
  for (let i = 0; i < K; i++) A[i * K + i] += 1e-12 * (diag || 1);
  const x = solve(A, b, K);
  const phi = new Float64Array(M);
  phi.set(x);
  phi[M - 1] = total - x.reduce((s, v) => s + v, 0);
  return phi;
}

/** Solves A x = b (A K×K, row-major; both overwritten) by Gaussian elimination with partial pivoting. */
function solve(A: Float64Array, b: Float64Array, K: number): Float64Array {
  for (let c = 0; c < K; c++) {
    let p = c;
    for (let r = c + 1; r < K; r++) if (Math.abs(A[r * K + c]) > Math.abs(A[p * K + c])) p = r;
    if (p !== c) {
      for (let j = 0; j < K; j++) [A[c * K + j], A[p * K + j]] = [A[p * K + j], A[c * K + j]];
      [b[c], b[p]] = [b[p], b[c]];
    }
    const pivot = A[c * K + c];
    if (pivot === 0) continue;
    for (let r = c + 1; r < K; r++) {
      const f = A[r * K + c] / pivot;
      if (f === 0) continue;
      for (let j = c; j < K; j++) A[r * K + j] -= f * A[c * K + j];
      b[r] -= f * b[c];
    }
  }
  const x = new Float64Array(K);
  for (let r = K - 1; r >= 0; r--) {
    let s = b[r];
    for (let j = r + 1; j < K; j++) s -= A[r * K + j] * x[j];
    x[r] = A[r * K + r] === 0 ? 0 : s / A[r * K + r];
  }
  return x;
}
