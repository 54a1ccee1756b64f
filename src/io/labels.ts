import { readFile } from 'node:fs/promises';
import { SegGradCamError } from '../errors.js';

/** Class names from a labels file: a JSON array of strings, or one name per line. */
export async function readLabelsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new SegGradCamError(`labels file not found: ${path}`, 'file');
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new SegGradCamError(`labels file is not valid JSON: ${path}`, 'file');
    }
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) {
      throw new SegGradCamError(`labels file must be a JSON array of strings: ${path}`, 'file');
    }
    return parsed;
  }
  return trimmed
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Class names carried in a model.json's userDefinedMetadata.classNames, if any. */
export function classNamesFromMetadata(metadata: unknown): string[] | undefined {
  const names = (metadata as { classNames?: unknown } | undefined)?.classNames;
  return Array.isArray(names) && names.every((s) => typeof s === 'string') ? names : undefined;
}
