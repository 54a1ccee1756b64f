/** A seeded PRNG (mulberry32) and Gaussian noise (Box–Muller): the same noise on every backend. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
