/**
 * Colour maps for heatmaps: turbo, viridis and inferno are d3-scale-chromatic's reference
 * implementations; jet is the classic MATLAB piecewise-linear definition (the Seg-Grad-CAM paper's
 * figures use it); gray is black → white.
 */
import { interpolateInferno, interpolateTurbo, interpolateViridis } from 'd3-scale-chromatic';

export const COLORMAPS = ['turbo', 'viridis', 'inferno', 'jet', 'gray'] as const;
export type ColormapName = (typeof COLORMAPS)[number];
/** An 8-bit colour, 0..255 per channel. */
export type Rgb = [number, number, number];

/**
 * The colour of `t` in [0, 1] under the map, as 0..255 integers. t is clamped to [0, 1];
 * NaN counts as 0 ("no evidence").
 */
export function colormap(name: ColormapName, t: number): Rgb {
  const x = Number.isNaN(t) ? 0 : Math.min(1, Math.max(0, t));
  switch (name) {
    case 'turbo':
      return parseCss(interpolateTurbo(x));
    case 'viridis':
      return parseCss(interpolateViridis(x));
    case 'inferno':
      return parseCss(interpolateInferno(x));
    case 'jet':
      return jet(x);
    case 'gray': {
      const v = Math.round(x * 255);
      return [v, v, v];
    }
    default:
      throw new RangeError(`unknown colormap '${name as string}'; known: ${COLORMAPS.join(', ')}`);
  }
}

/** MATLAB jet: dark blue (0, 0, .5) → blue → cyan → yellow → red → dark red (.5, 0, 0). */
function jet(t: number): Rgb {
  const ramp = (c: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - c))));
  return [ramp(3), ramp(2), ramp(1)];
}

const luts = new Map<ColormapName, Uint8Array>();

/** A 256-entry lookup table (r, g, b per entry; entry i is colormap(name, i / 255)), built once per map. */
export function colormapLut(name: ColormapName): Uint8Array {
  let lut = luts.get(name);
  if (!lut) {
    lut = new Uint8Array(256 * 3);
    for (let i = 0; i < 256; i++) lut.set(colormap(name, i / 255), i * 3);
    luts.set(name, lut);
  }
  return lut;
}

/** The LUT entry for t (clamped, NaN → 0): index into colormapLut(name) is 3 * lutIndex(t). */
export function lutIndex(t: number): number {
  // NaN fails both comparisons and lands on 0.
  return t > 0 ? (t < 1 ? Math.round(t * 255) : 255) : 0;
}

/** "#rrggbb" or "rgb(r, g, b)", the two forms d3-scale-chromatic returns. */
export function parseCss(css: string): Rgb {
  if (css.startsWith('#') && css.length === 7) {
    const v = parseInt(css.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  const m = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(css);
  if (!m) throw new Error(`unexpected colour string '${css}'`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
