/**
 * The items of a batch run: a folder of images, or a manifest (CSV with a header row, or JSON
 * Lines) with the columns `image` (required), `mask` (ground truth), `region` (a region rule) and
 * `class` (classes separated by ';'). Paths in a manifest are relative to the manifest's folder.
 * An item's id is its image path as given (relative to the folder for a folder input); ids are
 * unique, and an item's output folder is derived from its id alone, so the same input gives the
 * same output paths in every run.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, relative, resolve, sep } from 'node:path';
import { parse } from 'csv-parse/sync';
import { SegGradCamError } from '../errors.js';
import { REGION_RULES, type RegionRule } from './plan.js';

export interface BatchItem {
  /** Stable id: the image path as the manifest gives it (or relative to the input folder). */
  id: string;
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of the ground-truth label image (see docs/batch.md), when given. */
  mask?: string;
  /** This item's region rule (replaces the run's). */
  region?: RegionRule;
  /** This item's classes (replace the run's). */
  classes?: string[];
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** Items of a folder (images by sorted relative path, subfolders included) or a manifest file. */
export async function readItems(input: string): Promise<BatchItem[]> {
  const info = await stat(input).catch(() => {
    throw new SegGradCamError(`input not found: ${input}`, 'file');
  });
  const items = info.isDirectory() ? await folderItems(input) : await manifestItems(input);
  if (items.length === 0) throw new SegGradCamError(`no images in ${input} (PNG or JPEG)`, 'file');
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.id)) throw new SegGradCamError(`image ${it.id} is listed twice in ${input}`, 'usage');
    seen.add(it.id);
  }
  return items;
}

async function folderItems(folder: string): Promise<BatchItem[]> {
  const root = resolve(folder);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && IMAGE_EXT.test(e.name))
    .map((e) => resolve(e.parentPath, e.name))
    .sort()
    .map((image) => ({ id: relative(root, image).split(sep).join('/'), image }));
}

type Row = Record<string, unknown>;

async function manifestItems(path: string): Promise<BatchItem[]> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new SegGradCamError(`cannot read manifest ${path}: ${e.message}`, 'file');
  });
  const rows = /\.jsonl?$/i.test(path) ? jsonLines(text, path) : csvRows(text, path);
  const root = dirname(resolve(path));
  return rows.map((row, k) => itemOf(row, root, `${path} row ${k + 1}`));
}

function jsonLines(text: string, path: string): Row[] {
  const rows: Row[] = [];
  text.split('\n').forEach((line, k) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new SegGradCamError(`${path} line ${k + 1} is not JSON`, 'file');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new SegGradCamError(`${path} line ${k + 1}: expected an object`, 'file');
    rows.push(v as Row);
  });
  return rows;
}

function csvRows(text: string, path: string): Row[] {
  try {
    return parse(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true }) as Row[];
  } catch (e) {
    throw new SegGradCamError(`${path} is not a valid CSV manifest: ${(e as Error).message}`, 'file');
  }
}

function itemOf(row: Row, root: string, where: string): BatchItem {
  const text = (key: string): string | undefined => {
    const v = row[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (Array.isArray(v)) return v.map(String).join(';');
    return String(v);
  };
  const image = text('image');
  if (!image) throw new SegGradCamError(`${where}: no image`, 'usage');
  const mask = text('mask');
  const region = text('region');
  if (region !== undefined && !(REGION_RULES as readonly string[]).includes(region))
    throw new SegGradCamError(`${where}: region '${region}' is not one of ${REGION_RULES.join(', ')}`, 'usage');
  const cls = text('class');
  return {
    id: image,
    image: resolve(root, image),
    ...(mask ? { mask: resolve(root, mask) } : {}),
    ...(region ? { region: region as RegionRule } : {}),
    ...(cls ? { classes: cls.split(';').map((c) => c.trim()) } : {}),
  };
}

/** The item's output folder name: its file name without extension and a hash of its id (unique, stable). */
export function itemFolder(id: string): string {
  const stem = basename(id, extname(id))
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 60);
  return `${stem}-${createHash('sha1').update(id).digest('hex').slice(0, 10)}`;
}
