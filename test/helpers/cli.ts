import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { saveModel } from './save-model.js';
import { tinyUnet } from './tiny-unet.js';

/** Runs the CLI from source; its exit code and output. */
export function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A 16x16 tiny U-Net (classes background, ring, bar) and a 16x16 colour image, saved in a new temp folder. */
export async function tinyUnetOnDisk(prefix: string): Promise<{ dir: string; unet: string; image: string }> {
  await tf.setBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const unet = await saveModel(tinyUnet(16, 3, 5), join(dir, 'unet'), { classNames: ['background', 'ring', 'bar'] });
  const png = new PNG({ width: 16, height: 16 });
  for (let i = 0; i < 256; i++) png.data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
  const image = join(dir, 'image.png');
  writeFileSync(image, PNG.sync.write(png));
  return { dir, unet, image };
}
