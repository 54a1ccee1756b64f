/** The files of the volume explorer's default sample, for the build (URL path in the app → file in the repo). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_VOLUME_SAMPLE, sampleUrl } from './src/volume/defaults.js';

/** A missing file is left out (the page then says it cannot open the default sample). */
export function volumeFiles(repo: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const path of Object.values(DEFAULT_VOLUME_SAMPLE)) if (existsSync(join(repo, path))) files.set(sampleUrl(path), join(repo, path));
  return files;
}
