import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { BiasTiles } from '../../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';
const assets = await loadTextureMnistAssets();
const arm = (process.argv[2] ?? 'strong') as 'strong';
const d = new BiasTiles(assets, { arm, seed: 1 });
const cols = 8,
  rows = 4,
  S = 64;
const png = new PNG({ width: cols * S, height: rows * S });
for (let k = 0; k < cols * rows; k++) {
  const t = d.sample('train', k);
  console.log(k, t.digit, t.half, t.biasPresent, t.fillTexture, t.backgroundTexture, t.secondTexture);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      for (let c = 0; c < 4; c++)
        png.data[((Math.floor(k / cols) * S + y) * cols * S + (k % cols) * S + x) * 4 + c] = t.image.data[(y * S + x) * 4 + c];
}
writeFileSync(process.argv[3] ?? 'bias-tiles.png', PNG.sync.write(png));
