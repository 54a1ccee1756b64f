/** Node-only: a labels file from disk, parsed by labels.ts (the parser the explorer uses too). */
import { readFile } from 'node:fs/promises';
import { SegGradCamError } from '../errors.js';
import { parseLabels } from './labels.js';

/** Class names from a labels file (see parseLabels for the forms). Errors are 'file' errors naming the path. */
export async function readLabelsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    throw new SegGradCamError(
      code === 'ENOENT'
        ? `labels file not found: ${path}`
        : `cannot read labels file ${path}: ${code === 'EISDIR' ? 'it is a directory' : (code ?? String(err))}`,
      'file',
    );
  }
  try {
    return parseLabels(text);
  } catch (err) {
    if (err instanceof SegGradCamError) throw new SegGradCamError(`${err.message}: ${path}`, 'file');
    throw err;
  }
}
