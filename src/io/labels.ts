/**
 * Class names (and optional colours) from the text of a labels file: the one parser of the CLI
 * (--labels), the library and the explorer. Browser-safe: no Node imports here (the file reader
 * is in labels-node.ts). Accepted forms:
 * - a JSON array of names, or of { "name": …, "color": "#rrggbb" } objects (the two may mix);
 * - one class per line: a name, optionally followed by a colour `#rrggbb` or `#rgb` after a
 *   space, tab or comma. Blank lines are skipped; surrounding spaces and a UTF-8 BOM are dropped.
 */
import { SegGradCamError } from '../errors.js';
import type { Rgb } from '../render/colormap.js';

export interface Labels {
  names: string[];
  /** A colour per class where the file gives one, else null. */
  colors: Array<Rgb | null>;
}

const HEX = /^#([0-9a-f]{6}|[0-9a-f]{3})$/i;

/** '#rrggbb' or '#rgb' → [r, g, b]; null for anything else. */
export function parseColor(text: string): Rgb | null {
  const t = text.trim();
  if (!HEX.test(t)) return null;
  let h = t.slice(1);
  if (h.length === 3) h = [...h].map((c) => c + c).join('');
  const v = parseInt(h, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Class names from a labels file's text (colours, if any, are dropped). A bad file is a 'file' error. */
export function parseLabels(text: string): string[] {
  return parseLabelsWithColors(text).names;
}

/** Class names and their colours from a labels file's text. A bad file is a 'file' error naming the problem. */
export function parseLabelsWithColors(text: string): Labels {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed.length === 0) throw bad('the labels file is empty');
  if (trimmed.startsWith('[')) return fromJson(trimmed);
  if ([...trimmed.slice(0, 4096)].some((ch) => ch.charCodeAt(0) < 9 || (ch.charCodeAt(0) > 13 && ch.charCodeAt(0) < 32))) {
    throw bad('the labels file is not text');
  }
  const labels: Labels = { names: [], colors: [] };
  for (const raw of trimmed.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.length === 0) continue;
    const m = /^(.*?)[\s,]+(#[0-9a-f]{3}(?:[0-9a-f]{3})?)$/i.exec(line);
    const named = m !== null && m[1].length > 0;
    labels.names.push(named ? m[1] : line);
    labels.colors.push(named ? parseColor(m[2]) : null);
  }
  return labels;
}

function fromJson(text: string): Labels {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('the labels file is not valid JSON');
  }
  if (!Array.isArray(parsed)) throw bad('the labels file must be a JSON array');
  const labels: Labels = { names: [], colors: [] };
  for (const item of parsed) {
    if (typeof item === 'string') {
      labels.names.push(item);
      labels.colors.push(null);
    } else if (item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string') {
      const { name, color } = item as { name: string; color?: unknown };
      labels.names.push(name);
      labels.colors.push(typeof color === 'string' ? parseColor(color) : null);
    } else {
      throw bad('the labels file must list names, or objects with a name and a color');
    }
  }
  return labels;
}

const bad = (message: string) => new SegGradCamError(message, 'file');

/** Class names carried in a model.json's userDefinedMetadata.classNames, if any. */
export function classNamesFromMetadata(metadata: unknown): string[] | undefined {
  const names = (metadata as { classNames?: unknown } | undefined)?.classNames;
  return Array.isArray(names) && names.every((s) => typeof s === 'string') ? names : undefined;
}
