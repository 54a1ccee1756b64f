/**
 * The view in the page's URL: model, image, layer, class and region (and the method, score,
 * colormap, opacity and backend), so that a link reproduces what was on the screen.
 */
import type { Region } from '../../src/region/region.js';

export interface ViewState {
  /** A bundled model's id, or `url:<model.json URL>`. */
  model?: string;
  /** For a model given by URL: its labels file. */
  labels?: string;
  /** A bundled sample (its URL in the app), or `url:<image URL>`. */
  image?: string;
  layer?: string;
  class?: number;
  region?: Region;
  method?: string;
  score?: 'logits' | 'probability';
  colormap?: string;
  opacity?: number;
  backend?: string;
  /** The region tool (pixel when absent). */
  tool?: string;
  /** The negative map (absent: off). */
  negative?: boolean;
  /** The contrast class c′ ("rather than"), by index. */
  contrast?: number;
  /** The heatmap's scaling (absent: max). */
  normalize?: 'max' | 'minmax';
}

const KEYS = [
  'model',
  'labels',
  'image',
  'layer',
  'class',
  'region',
  'method',
  'score',
  'colormap',
  'opacity',
  'backend',
  'tool',
  'negative',
  'contrast',
  'normalize',
] as const;

export function encodeState(s: ViewState): string {
  const q = new URLSearchParams();
  for (const key of KEYS) {
    const v = s[key];
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (v === true) {
      q.set(key, '1');
      continue;
    }
    q.set(key, key === 'region' ? encodeRegion(v as Region) : String(v));
  }
  return q.toString();
}

export function decodeState(search: string): ViewState {
  const q = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  const s: ViewState = {};
  const str = (k: string) => {
    const v = q.get(k);
    return v === null || v === '' ? undefined : v;
  };
  s.model = str('model');
  s.labels = str('labels');
  s.image = str('image');
  s.layer = str('layer');
  const c = str('class');
  if (c !== undefined && /^\d+$/.test(c)) s.class = Number(c);
  const r = str('region');
  if (r !== undefined) {
    try {
      s.region = decodeRegion(r);
    } catch {
      // A damaged region in a link is dropped, not fatal.
    }
  }
  s.method = str('method');
  const score = str('score');
  if (score === 'logits' || score === 'probability') s.score = score;
  s.colormap = str('colormap');
  const o = str('opacity');
  if (o !== undefined && Number.isFinite(Number(o))) s.opacity = Math.min(1, Math.max(0, Number(o)));
  s.backend = str('backend');
  s.tool = str('tool');
  if (str('negative') === '1') s.negative = true;
  const contrast = str('contrast');
  if (contrast !== undefined && /^\d+$/.test(contrast)) s.contrast = Number(contrast);
  const normalize = str('normalize');
  if (normalize === 'max' || normalize === 'minmax') s.normalize = normalize;
  for (const k of Object.keys(s) as Array<keyof ViewState>) if (s[k] === undefined) delete s[k];
  return s;
}

const ints = (text: string, n: number): number[] => {
  const parts = text.split(',');
  if (parts.length !== n || parts.some((p) => !/^\d+$/.test(p))) throw new Error(`bad numbers '${text}'`);
  return parts.map(Number);
};

/** pixel:x,y · pixels:x,y;x,y · box:x0,y0,x1,y1 · object:x,y · class · whole · mask:WxH:<runs> */
export function encodeRegion(r: Region): string {
  switch (r.kind) {
    case 'pixel':
      return `pixel:${r.x},${r.y}`;
    case 'pixels':
      return `pixels:${r.points.map(([x, y]) => `${x},${y}`).join(';')}`;
    case 'box':
      return `box:${r.x0},${r.y0},${r.x1},${r.y1}`;
    case 'object':
      return `object:${r.x},${r.y}`;
    case 'class':
      return 'class';
    case 'whole':
      return 'whole';
    case 'mask':
      return `mask:${r.width}x${r.height}:${encodeRuns(r.mask)}`;
  }
}

export function decodeRegion(text: string): Region {
  const i = text.indexOf(':');
  const kind = i < 0 ? text : text.slice(0, i);
  const rest = i < 0 ? '' : text.slice(i + 1);
  switch (kind) {
    case 'pixel': {
      const [x, y] = ints(rest, 2);
      return { kind: 'pixel', x, y };
    }
    case 'object': {
      const [x, y] = ints(rest, 2);
      return { kind: 'object', x, y };
    }
    case 'pixels': {
      const points = rest
        .split(';')
        .filter((p) => p.length > 0)
        .map((p) => ints(p, 2) as [number, number]);
      if (points.length === 0) throw new Error('no pixels');
      return { kind: 'pixels', points };
    }
    case 'box': {
      const [x0, y0, x1, y1] = ints(rest, 4);
      return { kind: 'box', x0, y0, x1, y1 };
    }
    case 'class':
      return { kind: 'class' };
    case 'whole':
      return { kind: 'whole' };
    case 'mask': {
      const m = /^(\d+)x(\d+):(.*)$/.exec(rest);
      if (!m) throw new Error('bad mask');
      const width = Number(m[1]);
      const height = Number(m[2]);
      return { kind: 'mask', width, height, mask: decodeRuns(m[3], width * height) };
    }
    default:
      throw new Error(`unknown region '${kind}'`);
  }
}

/** Run lengths in base 36, alternating 0-runs and 1-runs, starting with 0s. */
export function encodeRuns(mask: Uint8Array): string {
  const runs: number[] = [];
  let current = 0;
  let n = 0;
  for (const v of mask) {
    const b = v ? 1 : 0;
    if (b === current) n++;
    else {
      runs.push(n);
      current = b;
      n = 1;
    }
  }
  runs.push(n);
  return runs.map((r) => r.toString(36)).join('.');
}

export function decodeRuns(text: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let pos = 0;
  let bit = 0;
  for (const part of text.split('.')) {
    const n = parseInt(part, 36);
    if (!Number.isFinite(n) || n < 0 || pos + n > length) throw new Error('bad mask runs');
    if (bit) out.fill(1, pos, pos + n);
    pos += n;
    bit ^= 1;
  }
  if (pos !== length) throw new Error('mask runs do not cover the image');
  return out;
}
