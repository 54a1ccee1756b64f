/**
 * One item of a batch run: decode the image (and its ground truth), run the forward pass once,
 * expand the plan into requests, explain them together (`explainMany`: one forward pass per
 * image), and write every output file of the item at once (temporary files renamed only when all
 * are written). Returns the records for the ledger; never throws for a bad input — the error is
 * recorded instead.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SegGradCamError } from '../errors.js';
import type { Explainer, Explanation } from '../explain.js';
import type { RgbaImage } from '../image.js';
import { decodeImage } from '../io/codec.js';
import { encodePng } from '../io/codec.js';
import { readImageFile } from '../io/files.js';
import { writeOutputs, type Output } from '../io/output-set.js';
import { COLORMAPS, overlayHeatmap, resizeLabelsNearest, type ColormapName } from '../render/index.js';
import { itemFolder, type BatchItem } from './manifest.js';
import { encodeNpyFloat32 } from './npy.js';
import { planRequests, type BatchPlan, type PlannedRequest } from './plan.js';
import { gtStats, type GtStats } from './stats.js';

export interface AlphaStats {
  channels: number;
  mean: number;
  min: number;
  max: number;
  /** Channels with α > 0. */
  positive: number;
}

/** One explained request: a line of results.jsonl. */
export interface RequestResult {
  item: string;
  request: string;
  classIndex: number;
  className?: string;
  region: string;
  layer: string;
  method: string;
  /** S = Σ_M y^c. */
  S: number;
  alpha: AlphaStats | null;
  empty: boolean;
  camMax: number;
  camWidth: number;
  camHeight: number;
  /** Milliseconds: decoding, the forward pass, and explainMany for all of the item's requests (shared). */
  timings: { decodeMs: number; forwardMs: number; explainMs: number };
  /** Relative to the output folder. */
  paths: { overlay: string; cam: string };
  /** Against the ground truth, when the item has a mask. */
  stats?: GtStats;
}

export interface FailedRequest {
  item: string;
  request?: string;
  error: { code: string; message: string };
}

/** What the ledger records for an item. */
export interface ItemRecord {
  item: string;
  results: RequestResult[];
  errors: FailedRequest[];
}

export interface ItemOptions {
  outDir: string;
  limitInputPixels?: number;
}

const errorOf = (e: unknown) =>
  e instanceof SegGradCamError ? { code: e.code, message: e.message } : { code: 'internal', message: (e as Error)?.message ?? String(e) };

/** Output name of a request: its key with unsafe characters replaced. */
const requestFile = (key: string) => key.replace(/[^A-Za-z0-9._-]+/g, '_');

/**
 * Explains an item and writes its files. A bad input (unreadable or corrupt image, bad mask, a
 * failing request) is recorded in the returned record; failing to write the outputs (disk full,
 * permissions) throws: that is no property of the item, and the run stops.
 */
export async function processItem(explainer: Explainer, item: BatchItem, plan: BatchPlan, options: ItemOptions): Promise<ItemRecord> {
  const staged = await computeItem(explainer, item, plan, options);
  if (staged.outputs.length > 0) {
    await mkdir(dirname(staged.outputs[0].path), { recursive: true });
    await writeOutputs(staged.outputs);
  }
  return staged.record;
}

/**
 * The item's record and its output files' bytes, not yet written (a worker thread writes them
 * while it computes the next item). A bad input is recorded, never thrown; the forward pass is
 * released.
 */
export async function computeItem(
  explainer: Explainer,
  item: BatchItem,
  plan: BatchPlan,
  options: ItemOptions,
): Promise<{ outputs: Output[]; record: ItemRecord }> {
  try {
    return await explainItem(explainer, item, plan, options);
  } catch (e) {
    return { outputs: [], record: { item: item.id, results: [], errors: [{ item: item.id, error: errorOf(e) }] } };
  } finally {
    // The image's forward pass is not needed again: memory stays flat over any number of items.
    explainer.release();
  }
}

async function explainItem(
  explainer: Explainer,
  item: BatchItem,
  plan: BatchPlan,
  options: ItemOptions,
): Promise<{ outputs: Output[]; record: ItemRecord }> {
  let t = performance.now();
  const image = await readImageFile(item.image, { limitInputPixels: options.limitInputPixels });
  const gt = item.mask ? await readGroundTruth(item.mask, image, item.classes) : undefined;
  const decodeMs = performance.now() - t;
  t = performance.now();
  const prediction = await explainer.predict(image);
  const forwardMs = performance.now() - t;
  const planned = planRequests(
    plan,
    {
      classNames: explainer.options.classNames,
      classCount: explainer.classCount,
      imageWidth: image.width,
      imageHeight: image.height,
      labels: prediction.labels,
      outWidth: prediction.width,
      outHeight: prediction.height,
      gt,
    },
    item,
  );
  t = performance.now();
  const outcomes = await explainAll(explainer, image, planned);
  const explainMs = performance.now() - t;

  const colormap = (plan.colormap ?? 'turbo') as ColormapName;
  if (!COLORMAPS.includes(colormap)) throw new SegGradCamError(`unknown colormap '${colormap}'`, 'usage');
  const folder = join('items', itemFolder(item.id));
  const outputs: Output[] = [];
  const results: RequestResult[] = [];
  const errors: FailedRequest[] = [];
  planned.forEach((p, k) => {
    const o = outcomes[k];
    if ('error' in o) {
      errors.push({ item: item.id, request: p.key, error: o.error });
      return;
    }
    const e = o.explanation;
    const paths = { overlay: join(folder, `${requestFile(p.key)}.png`), cam: join(folder, `${requestFile(p.key)}.npy`) };
    outputs.push({
      path: join(options.outDir, paths.overlay),
      bytes: encodePng(overlayHeatmap(image, e.heatmap, { colormap, opacity: plan.opacity })),
    });
    outputs.push({ path: join(options.outDir, paths.cam), bytes: encodeNpyFloat32(e.cam, [e.camHeight, e.camWidth]) });
    const region = resizeLabelsNearest(e.regionMask, e.prediction.width, e.prediction.height, e.width, e.height);
    results.push({
      item: item.id,
      request: p.key,
      classIndex: e.classIndex,
      ...(e.className !== undefined ? { className: e.className } : {}),
      region: p.regionTag,
      layer: e.layer.name,
      method: e.method,
      S: e.scoreValue,
      alpha: alphaStats(e.weights),
      empty: e.empty,
      camMax: e.camMax,
      camWidth: e.camWidth,
      camHeight: e.camHeight,
      timings: { decodeMs, forwardMs, explainMs },
      paths,
      ...(p.gt ? { stats: gtStats(e.heatmap, region, p.gt, plan.iouThreshold ?? 0.5) } : {}),
    });
  });
  return { outputs, record: { item: item.id, results, errors } };
}

type Outcome = { explanation: Explanation } | { error: { code: string; message: string } };

/** All requests in one explainMany; when that fails on one request's input, each alone so the others still count. */
async function explainAll(explainer: Explainer, image: RgbaImage, planned: PlannedRequest[]): Promise<Outcome[]> {
  if (planned.length === 0) return [];
  try {
    return (
      await explainer.explainMany(
        image,
        planned.map((p) => p.request),
      )
    ).map((explanation) => ({ explanation }));
  } catch (e) {
    if (!(e instanceof SegGradCamError)) throw e;
  }
  const out: Outcome[] = [];
  for (const p of planned) {
    try {
      out.push({ explanation: await explainer.explain(image, p.request) });
    } catch (e) {
      if (!(e instanceof SegGradCamError)) throw e;
      out.push({ error: errorOf(e) });
    }
  }
  return out;
}

function alphaStats(w: Float32Array | null): AlphaStats | null {
  if (!w || w.length === 0) return null;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let positive = 0;
  for (const v of w) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v > 0) positive++;
  }
  return { channels: w.length, mean: sum / w.length, min, max, positive };
}

/**
 * A ground-truth label image: the red channel is the class index per pixel. A mask of only 0 and
 * 255 for an item with exactly one class is a binary mask of that class (255 = the class).
 */
async function readGroundTruth(path: string, image: RgbaImage, classes: string[] | undefined): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch {
    throw new SegGradCamError(`ground-truth mask not found: ${path}`, 'file');
  }
  const img = decodeImage(bytes, path);
  if (img.width !== image.width || img.height !== image.height)
    throw new SegGradCamError(`mask ${path} is ${img.width}x${img.height} but the image is ${image.width}x${image.height}`, 'shape');
  const out = new Uint8Array(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i * 4];
  const binaryClass = classes?.length === 1 && /^\d+$/.test(classes[0]) ? Number(classes[0]) : undefined;
  if (binaryClass !== undefined && out.every((v) => v === 0 || v === 255))
    for (let i = 0; i < out.length; i++) out[i] = out[i] ? binaryClass : 0;
  return out;
}
