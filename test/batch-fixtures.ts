/** Synthetic tiles with ground-truth label images for the batch tests (written to a temp folder). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTextureMnist } from '../src/data/assets-node.js';
import { createImage } from '../src/image.js';
import { encodePng } from '../src/io/codec.js';

export const BATCH_MODEL = 'models/unet-texture-mnist-biased-base8/model.json';

/** n held-out tiles as PNGs, their label images (red = class index) and a CSV manifest; returns the manifest path. */
export async function writeTiles(dir: string, n: number, options: { corrupt?: number[] } = {}): Promise<string> {
  const data = await createTextureMnist({ seed: 7 });
  await mkdir(join(dir, 'img'), { recursive: true });
  const rows = ['image,mask'];
  for (let k = 0; k < n; k++) {
    const s = data.sample('heldout', k);
    const name = `tile-${String(k).padStart(3, '0')}`;
    const bytes = options.corrupt?.includes(k) ? Buffer.from('\x89PNG\r\n\x1a\nnot really a png') : encodePng(s.image);
    await writeFile(join(dir, 'img', `${name}.png`), bytes);
    const gt = createImage(s.image.width, s.image.height);
    for (let i = 0; i < s.labels.length; i++) {
      gt.data[i * 4] = gt.data[i * 4 + 1] = gt.data[i * 4 + 2] = s.labels[i];
      gt.data[i * 4 + 3] = 255;
    }
    await writeFile(join(dir, 'img', `${name}.gt.png`), encodePng(gt));
    rows.push(`img/${name}.png,img/${name}.gt.png`);
  }
  const manifest = join(dir, 'manifest.csv');
  await writeFile(manifest, `${rows.join('\n')}\n`);
  return manifest;
}
