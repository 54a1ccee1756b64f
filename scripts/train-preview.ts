import { createTextureMnist } from '../src/data/assets-node.js';
import { PNG } from 'pngjs';
import { writeFileSync } from 'node:fs';
const ds = await createTextureMnist({ size: 64, seed: 1 });
const t0 = performance.now();
for (let i = 0; i < 200; i++) ds.sample('train', i);
console.log('ms/tile', (performance.now() - t0) / 200);
const cols = 8,
  rows = 4,
  s = 64;
const png = new PNG({ width: cols * s, height: rows * s * 2 });
for (let k = 0; k < cols * rows; k++) {
  const t = ds.sample('train', k);
  const cx = (k % cols) * s,
    cy = Math.floor(k / cols) * s * 2;
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++) {
      const o = ((cy + y) * png.width + cx + x) * 4;
      for (let c = 0; c < 4; c++) png.data[o + c] = t.image.data[(y * s + x) * 4 + c];
      const o2 = ((cy + s + y) * png.width + cx + x) * 4;
      const l = t.labels[y * s + x];
      png.data[o2] = l * 23;
      png.data[o2 + 1] = l ? 255 - l * 20 : 0;
      png.data[o2 + 2] = t.biasMask[y * s + x] ? 255 : 0;
      png.data[o2 + 3] = 255;
    }
  if (k < 8) console.log(k, t.backgroundTexture, t.biasBackground, t.digits.map((d) => `${d.digit}:${d.texture}:${d.size}`).join(' '));
}
writeFileSync('/tmp/viz.png', PNG.sync.write(png));
