/** NIfTI files on disk (Node): .nii or .nii.gz by the file name. */
import { readFile } from 'node:fs/promises';
import { SegGradCamError } from '../errors.js';
import { writeFileAtomic } from './files.js';
import { decodeNifti, encodeNifti1, gzip, type NiftiGeometry, type NiftiVolume } from './nifti.js';

export async function readNiftiFile(path: string, options: { frame?: number } = {}): Promise<NiftiVolume> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new SegGradCamError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'file');
  }
  try {
    return await decodeNifti(bytes, options);
  } catch (e) {
    if (e instanceof SegGradCamError) throw new SegGradCamError(`${path}: ${e.message}`, e.code);
    throw new SegGradCamError(`${path}: not a readable NIfTI file (${String(e)})`, 'file');
  }
}

/** Writes a float32 NIfTI-1 volume with a source's geometry; gzipped when the name ends in .gz. All or nothing (atomic rename). */
export async function writeNiftiFile(
  path: string,
  data: Float32Array,
  dims: [number, number, number],
  geometry: NiftiGeometry,
  description = '',
): Promise<void> {
  const raw = encodeNifti1(data, dims, geometry, description);
  await writeFileAtomic(path, path.endsWith('.gz') ? await gzip(raw) : raw);
}
