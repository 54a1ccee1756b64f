/**
 * Class names and colours from a labels file. Accepted forms:
 * - a JSON array of names, or of { "name": …, "color": "#rrggbb" };
 * - one class per line: a name, optionally followed by a colour `#rrggbb` (after a space, tab or comma).
 * The CLI's --labels reads the plain forms (names only); colours are an explorer extension.
 */
import type { Rgb } from '../../src/render/colormap.js';

export interface Labels {
  names: string[];
  /** A colour per class where the file gives one. */
  colors: Array<Rgb | null>;
}

const HEX = /^#([0-9a-f]{6}|[0-9a-f]{3})$/i;

export function parseColor(text: string): Rgb | null {
  const t = text.trim();
  if (!HEX.test(t)) return null;
  let h = t.slice(1);
  if (h.length === 3) h = [...h].map((c) => c + c).join('');
  const v = parseInt(h, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function parseLabels(text: string): Labels {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed.length === 0) throw new Error('the labels file is empty');
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new Error('the labels file is not valid JSON');
    }
    if (!Array.isArray(parsed)) throw new Error('the labels file must be a JSON array');
    const names: string[] = [];
    const colors: Array<Rgb | null> = [];
    for (const item of parsed) {
      if (typeof item === 'string') {
        names.push(item);
        colors.push(null);
      } else if (item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string') {
        const { name, color } = item as { name: string; color?: unknown };
        names.push(name);
        colors.push(typeof color === 'string' ? parseColor(color) : null);
      } else {
        throw new Error('the labels file must list names, or objects with a name and a color');
      }
    }
    return { names, colors };
  }
  if ([...trimmed.slice(0, 4096)].some((ch) => ch.charCodeAt(0) < 9 || (ch.charCodeAt(0) > 13 && ch.charCodeAt(0) < 32))) {
    throw new Error('the labels file is not text');
  }
  const names: string[] = [];
  const colors: Array<Rgb | null> = [];
  for (const raw of trimmed.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.length === 0) continue;
    const m = /^(.*?)[\s,]+(#[0-9a-f]{3}(?:[0-9a-f]{3})?)$/i.exec(line);
    if (m && m[1].length > 0) {
      names.push(m[1]);
      colors.push(parseColor(m[2]));
    } else {
      names.push(line);
      colors.push(null);
    }
  }
  return { names, colors };
}
