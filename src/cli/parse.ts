import { SegGradCamError } from '../errors.js';

/** Parsers for CLI values; each throws a one-line SegGradCamError naming the flag. */

function integers(text: string, count: number, flag: string, form: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== count || parts.some((p) => !/^-?\d+$/.test(p))) {
    throw new SegGradCamError(`${flag} expects ${form} (integers), got '${text}'`, 'usage');
  }
  return parts.map(Number);
}

export function parsePoint(text: string, flag = '--pixel'): [number, number] {
  const [x, y] = integers(text, 2, flag, 'x,y');
  return [x, y];
}

export function parsePoints(text: string, flag = '--pixels'): Array<[number, number]> {
  const items = text.split(/[;\s]+/).filter((s) => s.length > 0);
  if (items.length === 0) throw new SegGradCamError(`${flag} expects 'x,y;x,y;…', got '${text}'`, 'usage');
  return items.map((item) => parsePoint(item, flag));
}

export function parseBox(text: string, flag = '--box'): [number, number, number, number] {
  const [x0, y0, x1, y1] = integers(text, 4, flag, 'x0,y0,x1,y1');
  return [x0, y0, x1, y1];
}

export function parseRange(text: string, flag = '--input-range'): [number, number] {
  const parts = text.split(',').map(Number);
  if (parts.length !== 2 || parts.some((v) => !Number.isFinite(v)) || parts[0] === parts[1]) {
    throw new SegGradCamError(`${flag} expects lo,hi (two different numbers), got '${text}'`, 'usage');
  }
  return [parts[0], parts[1]];
}

export function parseNumberIn(text: string, flag: string, lo: number, hi: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < lo || v > hi)
    throw new SegGradCamError(`${flag} expects a number in [${lo}, ${hi}], got '${text}'`, 'usage');
  return v;
}

export function parseNumberAtLeast(text: string, flag: string, min: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min)
    throw new SegGradCamError(`${flag} expects a number >= ${min}, got '${text}'`, 'usage');
  return v;
}

export function parseInteger(text: string, flag: string, min: number): number {
  if (!/^-?\d+$/.test(text.trim()) || Number(text) < min)
    throw new SegGradCamError(`${flag} expects an integer >= ${min}, got '${text}'`, 'usage');
  return Number(text);
}

/** A comma-separated list of non-empty items; undefined stays undefined. */
export function parseList(text: string | undefined, flag: string): string[] | undefined {
  if (text === undefined) return undefined;
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new SegGradCamError(`${flag} expects a comma-separated list, got '${text}'`, 'usage');
  return items;
}

/** Seconds as m:ss, or h:mm:ss past an hour ('--:--' when unknown). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

export function oneOf<T extends string>(text: string, flag: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(text)) {
    throw new SegGradCamError(`${flag} expects one of ${values.join(', ')}, got '${text}'`, 'usage');
  }
  return text as T;
}
