/**
 * Writes the bundled sample tiles (fixtures/tiles/) from the held-out split of the synthetic
 * dataset: `sample.png` shows the bias digit (3) on its reserved brick background next to
 * another digit; `sample-unbiased.png` has no bias digit. Deterministic: re-running gives the
 * same bytes. Usage: node --import tsx scripts/make-sample-tiles.ts
 */
import { writeFile } from 'node:fs/promises';
import { createTextureMnist } from '../src/data/assets-node.js';
import { encodePng } from '../src/io/codec.js';

const data = await createTextureMnist({ seed: 1, biasDigit: 3, biasTexture: 'brick', biasStrength: 1 });
const pick = (want: (s: ReturnType<typeof data.sample>) => boolean) => {
  for (let i = 0; i < 500; i++) {
    const s = data.sample('heldout', i);
    if (want(s)) return { s, i };
  }
  throw new Error('no tile found');
};
const digitsOf = (s: ReturnType<typeof data.sample>) => new Set(s.digits.map((d) => d.digit));
const biased = pick((s) => s.biasBackground && digitsOf(s).size >= 2);
const plain = pick((s) => !s.hasBiasDigit && digitsOf(s).size >= 2);
for (const [name, { s, i }] of [
  ['sample', biased],
  ['sample-unbiased', plain],
] as const) {
  await writeFile(`fixtures/tiles/${name}.png`, encodePng(s.image));
  const centre = s.digits.map((d) => `${d.digit}@(${Math.round(d.x + d.size / 2)},${Math.round(d.y + d.size / 2)})`);
  console.log(`${name}.png: held-out tile ${i}, background ${s.backgroundTexture}, digits ${centre.join(' ')}`);
}
