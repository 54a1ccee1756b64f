/**
 * Renders bias-study tiles into a raw file for the PyTorch trainer (scripts/bias/train.py):
 *   node --import tsx scripts/bias/dump-tiles.ts --arm ARM --seed SEED --split train|heldout
 *     --count N [--start 0] [--size 32] [--gen '{"controlRate":0.5}'] --out FILE
 * FILE holds, per tile i = start..start+N-1 in order, size*size*3 uint8 RGB bytes then size*size
 * uint8 class ids (0 = background, k + 1 = digit k); FILE.json records the options. With --objects,
 * FILE.obj holds per tile the size*size uint8 class of the object under each pixel (k + 1 on the
 * digit's pixels whatever their label, 0 elsewhere): it differs from the labels only on the control
 * arm's bias digits without the bias texture (labelled background). Deterministic
 * from (seed, split, index): the same tile the TS code renders. Written to a scratch folder, not committed.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BiasTiles, isBiasArm, type BiasTilesOptions } from '../../src/data/bias-tiles.js';
import { loadTextureMnistAssets } from '../../src/data/assets-node.js';

const { values } = parseArgs({
  options: {
    arm: { type: 'string', default: 'strong' },
    seed: { type: 'string', default: '0' },
    split: { type: 'string', default: 'train' },
    count: { type: 'string', default: '1000' },
    start: { type: 'string', default: '0' },
    size: { type: 'string', default: '32' },
    gen: { type: 'string', default: '{}' },
    out: { type: 'string' },
    objects: { type: 'boolean', default: false },
  },
});
const arm = values.arm!;
if (!isBiasArm(arm)) throw new Error(`unknown arm ${arm}`);
const split = values.split === 'heldout' ? 'heldout' : 'train';
const size = Number(values.size);
const count = Number(values.count);
const start = Number(values.start);
const gen = JSON.parse(values.gen!) as BiasTilesOptions;
const options: BiasTilesOptions = { ...gen, arm, seed: Number(values.seed), size };
const ds = new BiasTiles(await loadTextureMnistAssets(), options);
const n = size * size;
const buf = new Uint8Array(count * n * 4);
const objects = values.objects ? new Uint8Array(count * n) : undefined;
for (let t = 0; t < count; t++) {
  const s = ds.sample(split, start + t);
  if (objects) for (let p = 0; p < n; p++) objects[t * n + p] = s.digitMask[p] ? s.digit + 1 : 0;
  const o = t * n * 4;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) buf[o + p * 3 + c] = s.image.data[p * 4 + c];
    buf[o + n * 3 + p] = s.labels[p];
  }
}
await writeFile(values.out!, buf);
if (objects) await writeFile(`${values.out!}.obj`, objects);
await writeFile(`${values.out!}.json`, JSON.stringify({ options: ds.options, split, start, count }) + '\n');
