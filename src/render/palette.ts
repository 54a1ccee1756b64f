/** Class colours for label maps. */
import { schemeTableau10 } from 'd3-scale-chromatic';
import { parseCss, type Rgb } from './colormap.js';

/** One colour per class index. */
export type Palette = readonly Rgb[];

/** Background: dark, so that classes stand out and "nothing" reads as nothing. */
export const BACKGROUND_COLOR: Rgb = [20, 20, 28];

let cached: Palette | undefined;

/**
 * 256 class colours: class 0 (background) is near-black; 1..10 are Tableau 10, a set chosen to
 * be told apart; 11..255 step the hue by the golden angle with alternating lightness, so
 * neighbouring indices differ.
 */
export function defaultPalette(): Palette {
  if (!cached) {
    const p: Rgb[] = [BACKGROUND_COLOR, ...schemeTableau10.map(parseCss)];
    for (let i = p.length; i < 256; i++) {
      const hue = (i * 137.508) % 360;
      const light = [0.45, 0.62, 0.75][i % 3];
      p.push(hsl(hue, 0.65, light));
    }
    cached = Object.freeze(p);
  }
  return cached;
}

/** The colour of a class; indices past the palette wrap around. */
export function classColor(palette: Palette, index: number): Rgb {
  const n = palette.length;
  return palette[((index % n) + n) % n];
}

function hsl(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}
