/**
 * The volume page's sliding-window overlap and method options: read from their fields (a value out
 * of range is an error naming the field and what it takes), shown only for the methods that read
 * them, and kept in the URL. The library checks them again (src/volume/gradient-free.ts,
 * src/methods/*); here they are checked before any work starts, as the CLI's flags are.
 */
import type { MethodOptions } from '../../../src/methods/index.js';

/**
 * The overlap of neighbouring sliding windows: 0.5 ≤ f < 1, as the library's explain-volume
 * --overlap takes it (nnU-Net and MONAI blend windows that share at least half a patch).
 */
export function parseOverlap(text: string): number {
  const t = text.trim();
  const v = Number(t);
  if (t === '' || !(v >= 0.5 && v < 1))
    throw new Error(
      `overlap ${t || '(empty)'}: give a number in [0.5, 1) — neighbouring sliding windows share at least half a patch, as in nnU-Net and MONAI`,
    );
  return v;
}

type Field = HTMLInputElement | HTMLSelectElement;

/** One option: its field, the URL parameter, the methods that read it, and how its text becomes the option's value. */
interface OptionField {
  id: string;
  param: string;
  methods: readonly string[];
  read(text: string): Partial<MethodOptions>;
}

function integerAtLeast(text: string, what: string, min: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new Error(`${what} ${text}: give a whole number ≥ ${min}`);
  return v;
}
function finite(text: string, what: string, check: (v: number) => boolean, range: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || !check(v)) throw new Error(`${what} ${text}: give a number ${range}`);
  return v;
}

/** Every option the volume methods read (src/volume/methods.ts, gradient-free.ts, explain.ts), but the negative map. */
const FIELDS: readonly OptionField[] = [
  {
    id: 'vol-variant',
    param: 'variant',
    methods: ['score-cam'],
    read: (t) => ({ variant: t === 'pytorch-grad-cam' ? 'pytorch-grad-cam' : 'increase' }),
  },
  {
    id: 'vol-max-channels',
    param: 'channels',
    methods: ['score-cam'],
    read: (t) => ({ maxChannels: integerAtLeast(t, 'Score-CAM channels', 1) }),
  },
  {
    id: 'vol-baseline',
    param: 'baseline',
    methods: ['score-cam'],
    read: (t) => {
      if (t === 'black' || t === 'mean') return { baseline: t };
      return { baseline: finite(t, 'Score-CAM baseline', () => true, "(model input units), or 'black' or 'mean'") };
    },
  },
  {
    id: 'vol-kernel',
    param: 'kernel',
    methods: ['kpca-cam'],
    read: (t) => ({ kernel: t === 'rbf' || t === 'linear' ? t : 'sigmoid' }),
  },
  { id: 'vol-gamma', param: 'gamma', methods: ['kpca-cam'], read: (t) => ({ gamma: finite(t, 'KPCA γ', (v) => v > 0, '> 0') }) },
  { id: 'vol-sigmas', param: 'sigmas', methods: ['fem'], read: (t) => ({ sigmas: finite(t, 'FEM k', (v) => v >= 0, '≥ 0') }) },
  {
    id: 'vol-comparisons',
    param: 'comparisons',
    methods: ['finer-cam'],
    read: (t) => ({ comparisons: integerAtLeast(t, 'Finer-CAM classes compared', 1) }),
  },
  {
    id: 'vol-finer-alpha',
    param: 'finer-alpha',
    methods: ['finer-cam'],
    read: (t) => ({ finerAlpha: finite(t, 'Finer-CAM α', () => true, '') }),
  },
];

const field = (id: string) => document.getElementById(id) as Field;
const negativeBox = () => document.getElementById('vol-negative') as HTMLInputElement;
/** The default of a field: empty for text and number fields, the first option of a list. */
const defaultOf = (f: Field) => (f instanceof HTMLSelectElement ? (f.options[0]?.value ?? '') : '');

/** The ids of every option field (the page re-asks the shown question when one changes). */
export const optionFieldIds = (): string[] => ['vol-negative', ...FIELDS.map((f) => f.id)];

/**
 * Shows the options `method` reads and hides the others (a hidden field keeps its value but is not
 * sent); the negative box is disabled, with the reason on hover, for methods without a negative map.
 */
export function syncOptionFields(method: string, negativeMethods: readonly string[]): void {
  for (const f of FIELDS) {
    const label = field(f.id).closest('label');
    if (label) label.hidden = !f.methods.includes(method);
  }
  const box = negativeBox();
  const has = negativeMethods.includes(method);
  if (!has) box.checked = false;
  box.disabled = !has;
  const reason = has
    ? 'The negative map ReLU(−Σ …): what speaks against the class in M'
    : `${method} has no negative map; methods with one: ${negativeMethods.join(', ')}`;
  box.title = reason;
  const label = box.closest('label');
  if (label) label.title = reason;
}

/** The options of `method` from the fields shown (an empty field: the library's default); throws on a bad value. */
export function readMethodOptions(method: string): MethodOptions {
  const out: MethodOptions = {};
  if (negativeBox().checked && !negativeBox().disabled) out.negative = true;
  for (const f of FIELDS) {
    if (!f.methods.includes(method)) continue;
    const t = field(f.id).value.trim();
    if (t === '' || t === defaultOf(field(f.id))) continue;
    Object.assign(out, f.read(t));
  }
  return out;
}

/** The option fields that differ from their defaults, as URL parameters (`negative=1`, `channels=4`, …). */
export function optionParams(method: string, q: URLSearchParams): void {
  if (negativeBox().checked && !negativeBox().disabled) q.set('negative', '1');
  for (const f of FIELDS) {
    if (!f.methods.includes(method)) continue;
    const t = field(f.id).value.trim();
    if (t !== '' && t !== defaultOf(field(f.id))) q.set(f.param, t);
  }
}

/** The option fields from URL parameters (before the first question; syncOptionFields then settles the negative box). */
export function applyOptionParams(q: URLSearchParams): void {
  if (q.get('negative') === '1') negativeBox().checked = true;
  for (const f of FIELDS) {
    const v = q.get(f.param);
    if (v === null) continue;
    const el = field(f.id);
    if (el instanceof HTMLSelectElement && ![...el.options].some((o) => o.value === v)) continue;
    el.value = v;
  }
}
