import { setupBackend } from '../../src/backend/index.js';
import type { RgbaImage } from '../../src/image.js';

/** Tests run on the cpu backend (with our kernel fixes) unless they say otherwise: it is the reference. */
export async function useCpu(): Promise<void> {
  await setupBackend('cpu');
}

/** A deterministic pseudo-random RGBA image. */
export function randomImage(width: number, height: number, seed = 1): RgbaImage {
  let s = seed >>> 0;
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = (i & 3) === 3 ? 255 : s >>> 24;
  }
  return { width, height, data };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
