/**
 * A folder of 2-D slices (PNG) read as a volume (Node): the files sorted by name in natural order
 * (slice2 before slice10) are the axial slices d = 0, 1, …; each slice's rows are h, its columns w;
 * grey values 0..255 (the luminance 0.299 R + 0.587 G + 0.114 B, the value itself for grey PNGs).
 * No geometry is known: the volume gets 1 mm isotropic voxels and the identity affine.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SegGradCamError } from '../errors.js';
import { readImageFile } from '../io/files.js';
import type { NiftiGeometry } from '../io/nifti.js';
import type { Dims3 } from './regions.js';

export interface SliceVolume {
  /** [D, H, W], C order. */
  data: Float32Array;
  dims: Dims3;
  files: string[];
  geometry: NiftiGeometry;
}

/** The geometry of a volume without one: 1 mm voxels, identity affine (sform code 2 when written). */
export const IDENTITY_GEOMETRY: NiftiGeometry = {
  affine: [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ],
  spacing: [1, 1, 1],
  sformCode: 0,
  qform: { code: 0, b: 0, c: 0, d: 0, offset: [0, 0, 0], qfac: 1 },
  xyztUnits: 2,
};

export async function readSliceFolder(folder: string): Promise<SliceVolume> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (e) {
    throw new SegGradCamError(`cannot read the slice folder ${folder}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'file');
  }
  const files = names
    .filter((n) => /\.png$/i.test(n))
    .sort(new Intl.Collator('en', { numeric: true }).compare)
    .map((n) => join(folder, n));
  if (files.length === 0) throw new SegGradCamError(`the slice folder ${folder} holds no .png file`, 'file');
  let H = 0;
  let W = 0;
  let data = new Float32Array(0);
  for (const [d, f] of files.entries()) {
    const im = await readImageFile(f);
    if (d === 0) {
      [H, W] = [im.height, im.width];
      data = new Float32Array(files.length * H * W);
    } else if (im.height !== H || im.width !== W)
      throw new SegGradCamError(
        `slice ${f} is ${im.width}x${im.height}, the first slice ${W}x${H}: every slice must have the same size`,
        'image',
      );
    for (let i = 0; i < H * W; i++) {
      const [r, g, b] = [im.data[4 * i], im.data[4 * i + 1], im.data[4 * i + 2]];
      data[d * H * W + i] = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
    }
  }
  return { data, dims: [files.length, H, W], files, geometry: IDENTITY_GEOMETRY };
}
