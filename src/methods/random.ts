/** Gaussian noise (Box–Muller) from the project's seeded PRNG (mulberry32): the same noise on every backend. */
export { mulberry32 } from '../data/prng.js';

/** n samples of N(0, σ²). */
export function gaussianNoise(n: number, sigma: number, random: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - random(); // (0, 1]: log stays finite
    const r = Math.sqrt(-2 * Math.log(u)) * sigma;
    const t = 2 * Math.PI * random();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}
