/**
 * `seg-grad-cam explain-volume` on fixtures/volume: the written NIfTI files equal the library's
 * explanation (≤ 1e-6) and carry the input's affine (our reader, and nibabel when Debian's python3
 * has it); a volume larger than the model input goes through sliding windows with progress on
 * stderr and equals explainVolumeGrid; a folder of PNG slices reads as the volume; bad inputs
 * exit 2 with one line and write nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { encodeNifti1 } from '../src/io/nifti.js';
import { readNiftiFile } from '../src/io/nifti-node.js';
import { explainVolumeGrid, openVolumeModel } from '../src/volume/explain-grid.js';
import type { Dims3, VolumeRegion } from '../src/volume/regions.js';
import { cli } from './helpers/cli.js';

const MODEL = 'fixtures/volume/unet3d.onnx';
const VOLUME = 'fixtures/volume/volume.nii.gz';
const modelBytes = () => new Uint8Array(readFileSync(MODEL));
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const maxOf = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, a[i]);
  return m;
};

async function library(data: Float32Array, dims: Dims3, region: VolumeRegion, method = 'seg-grad-cam', classId?: number) {
  await tf.setBackend('cpu');
  const model = await openVolumeModel(modelBytes(), nodeRuntime, dims);
  try {
    return await explainVolumeGrid(model, data, dims, { region, method, classId });
  } finally {
    await model.dispose();
  }
}

const python = '/usr/bin/python3';
const hasNibabel = existsSync(python) && spawnSync(python, ['-c', 'import nibabel'], { encoding: 'utf8' }).status === 0;

describe('seg-grad-cam explain-volume', () => {
  test('box region on the fixture: heatmap, raw CAM, figure and JSON equal the library; the affine is the input’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const out = join(dir, 'heat.nii.gz');
    const raw = join(dir, 'cam.nii');
    const fig = join(dir, 'slices.png');
    const json = join(dir, 'out.json');
    const r = cli(
      'explain-volume',
      '-m',
      MODEL,
      '-i',
      VOLUME,
      '--box',
      '4,5,6,8,14,16',
      '--method',
      'xgrad-cam',
      '--out',
      out,
      '--raw',
      raw,
      '--figure',
      fig,
      '--json',
      json,
    );
    assert.equal(r.code, 0, r.stderr);
    const vol = await readNiftiFile(VOLUME);
    const dims: Dims3 = [vol.dims[2], vol.dims[1], vol.dims[0]];
    const e = await library(vol.data, dims, { kind: 'box', box: [4, 5, 6, 8, 14, 16] }, 'xgrad-cam');
    const h = await readNiftiFile(out);
    const c = await readNiftiFile(raw);
    assert.deepEqual(h.dims, vol.dims);
    assert.ok(maxAbs(c.data, e.cam) <= 1e-6 * Math.max(1, maxOf(e.cam)), `raw ${maxAbs(c.data, e.cam)}`);
    const top = maxOf(e.cam);
    assert.ok(top > 0);
    assert.ok(
      maxAbs(
        h.data,
        Float32Array.from(e.cam, (x) => x / top),
      ) <= 1e-6,
      'heatmap = CAM / max',
    );
    assert.equal(maxOf(h.data), 1);
    for (const f of [h, c]) assert.deepEqual(f.affine, vol.affine);
    const j = JSON.parse(readFileSync(json, 'utf8')) as { alpha: number[]; score: number; class: number; method: string; timings: object };
    assert.equal(j.method, 'xgrad-cam');
    assert.equal(j.class, e.classId);
    assert.ok(maxAbs(j.alpha, e.alpha) <= 1e-6 * maxOf(e.alpha.map(Math.abs)), 'α');
    assert.equal(j.score, e.score);
    const png = PNG.sync.read(readFileSync(fig));
    assert.ok(png.width > 200 && png.height > 200);
    if (hasNibabel) {
      const py = spawnSync(
        python,
        [
          '-c',
          `import nibabel as nib, numpy as np, json, sys
a = nib.load(sys.argv[1]); b = nib.load(sys.argv[2])
print(json.dumps({"same": bool(np.allclose(a.affine, b.affine, atol=1e-5)), "shape": list(b.shape), "max": float(np.asarray(b.dataobj).max())}))`,
          VOLUME,
          out,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(py.status, 0, py.stderr);
      const n = JSON.parse(py.stdout) as { same: boolean; shape: number[]; max: number };
      assert.ok(n.same, 'nibabel: the affine differs from the input’s');
      assert.deepEqual(n.shape, vol.dims);
      assert.equal(n.max, 1);
    }
  });

  test('a volume larger than the model input: sliding windows, progress on stderr, equal to the library', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const vol = await readNiftiFile(VOLUME);
    // 16 x 20 x 36 (d, h, w): the fixture, then its first 12 columns again along w.
    const [D, H, W] = [16, 20, 36];
    const big = new Float32Array(D * H * W);
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) big[(d * H + h) * W + w] = vol.data[(d * H + h) * 24 + (w % 24)];
    const path = join(dir, 'big.nii');
    writeFileSync(path, encodeNifti1(big, [W, H, D], vol));
    const raw = join(dir, 'cam.nii.gz');
    const r = cli(
      'explain-volume',
      '-m',
      MODEL,
      '-i',
      path,
      '--voxel',
      '8,10,20',
      '--class',
      '0',
      '--raw',
      raw,
      '--out',
      join(dir, 'h.nii.gz'),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /gradient patch \d+\/\d+/);
    const e = await library(big, [D, H, W], { kind: 'voxel', voxel: [8, 10, 20] }, 'seg-grad-cam', 0);
    assert.ok(e.sliding && e.patches.total > 1);
    const c = await readNiftiFile(raw);
    assert.ok(maxAbs(c.data, e.cam) <= 1e-6 * Math.max(1, maxOf(e.cam)), `raw ${maxAbs(c.data, e.cam)}`);
  });

  test('a folder of PNG slices reads as the volume (d = file order, natural sort)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const slices = join(dir, 'slices');
    mkdirSync(slices);
    const [D, H, W] = [16, 20, 24];
    const data = new Float32Array(D * H * W);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37 + Math.floor(i / 480) * 11) % 256;
    for (let d = 0; d < D; d++) {
      const png = new PNG({ width: W, height: H });
      for (let i = 0; i < H * W; i++) {
        const g = data[d * H * W + i];
        png.data.set([g, g, g, 255], 4 * i);
      }
      writeFileSync(join(slices, `s${d}.png`), PNG.sync.write(png)); // s2 before s10
    }
    const raw = join(dir, 'cam.nii');
    const r = cli('explain-volume', '-m', MODEL, '--slices', slices, '--whole', '--class', '1', '--raw', raw, '--out', join(dir, 'h.nii'));
    assert.equal(r.code, 0, r.stderr);
    const c = await readNiftiFile(raw);
    assert.equal(c.affineSource, 'sform');
    await tf.setBackend('cpu');
    const model = await openVolumeModel(modelBytes(), nodeRuntime, [D, H, W]);
    const e1 = await explainVolumeGrid(model, data, [D, H, W], { region: { kind: 'whole' }, classId: 1 }).finally(() => model.dispose());
    assert.ok(maxAbs(c.data, e1.cam) <= 1e-6 * Math.max(1, maxOf(e1.cam)), `raw ${maxAbs(c.data, e1.cam)}`);
  });

  test('without -m and -i: the bundled 3-D model and sample (models/volume-synthetic)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const record = JSON.parse(readFileSync('models/volume-synthetic/training.json', 'utf8')) as { sample: { cubeCentre: number[] } };
    const json = join(dir, 'o.json');
    const out = join(dir, 'h.nii.gz');
    const r = cli('explain-volume', '--voxel', record.sample.cubeCentre.join(','), '--class', '2', '--out', out, '--json', json);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(readFileSync(json, 'utf8')) as { class: number; dims: number[]; sliding: boolean; model: string };
    assert.equal(j.class, 2);
    assert.deepEqual(j.dims, [32, 40, 48]);
    assert.equal(j.sliding, false);
    assert.match(j.model, /volume-synthetic\/model\.onnx$/);
    const h = await readNiftiFile(out);
    const sample = await readNiftiFile('models/volume-synthetic/sample.nii.gz');
    assert.deepEqual(h.affine, sample.affine);
  });

  test('--class by name: the labels beside the bundled model, or --labels; the same explanation as the index', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const record = JSON.parse(readFileSync('models/volume-synthetic/training.json', 'utf8')) as { sample: { cubeCentre: number[] } };
    const voxel = record.sample.cubeCentre.join(',');
    const run = (name: string, ...args: string[]) => {
      const json = join(dir, `${name}.json`);
      const r = cli('explain-volume', '--out', join(dir, `${name}.nii.gz`), '--json', json, ...args);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(readFileSync(json, 'utf8')) as { class: number; className?: string; score: number; alpha: number[] };
    };
    const byIndex = run('index', '--voxel', voxel, '--class', '1');
    const byName = run('name', '--voxel', voxel, '--class', 'sphere'); // models/volume-synthetic/labels.txt: background, sphere, cube
    assert.equal(byName.class, 1);
    assert.equal(byName.className, 'sphere');
    assert.equal(byName.score, byIndex.score);
    assert.deepEqual(byName.alpha, byIndex.alpha);
    // The fixture has no labels beside it: --labels names its classes.
    const labels = join(dir, 'labels.json');
    writeFileSync(labels, JSON.stringify(['air', 'blob', 'rim']));
    const fixtureArgs = ['-m', MODEL, '-i', VOLUME, '--box', '4,5,6,8,14,16'];
    const named = run('fixture-name', ...fixtureArgs, '--labels', labels, '--class', 'rim');
    const indexed = run('fixture-index', ...fixtureArgs, '--class', '2');
    assert.equal(named.class, 2);
    assert.equal(named.className, 'rim');
    assert.equal(indexed.className, undefined);
    assert.equal(named.score, indexed.score);
    const bad = cli('explain-volume', ...fixtureArgs, '--class', 'rim', '--out', join(dir, 'x.nii.gz'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown class 'rim'; no class names are known/);
    const unknown = cli('explain-volume', '--voxel', voxel, '--class', 'torus', '--out', join(dir, 'y.nii.gz'));
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown class 'torus'; known classes: background, sphere, cube/);
    assert.ok(!existsSync(join(dir, 'x.nii.gz')) && !existsSync(join(dir, 'y.nii.gz')));
  });

  test('bad inputs: exit 2, one line, nothing written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgc-vol-'));
    const notNifti = join(dir, 'x.nii');
    writeFileSync(notNifti, 'not a volume');
    const outs = ['--out', join(dir, 'h.nii.gz'), '--raw', join(dir, 'c.nii'), '--json', join(dir, 'o.json')];
    const cases: Array<[string[], RegExp]> = [
      [['-m', MODEL, '-i', VOLUME, '--voxel', '99,0,0'], /outside the 16x20x24 volume/],
      [['-m', MODEL, '-i', VOLUME, '--box', '1,2,3,4,5'], /--box expects d0,h0,w0,d1,h1,w1/],
      [['-m', MODEL, '-i', VOLUME, '--voxel', '1,2,3', '--method', 'rise'], /rise does not run on volumes/],
      [['-m', MODEL, '-i', notNifti, '--whole'], /not a readable NIfTI file/],
      [['-m', join(dir, 'missing.onnx'), '-i', VOLUME, '--whole'], /cannot read .*missing\.onnx/],
      [['-m', MODEL, '-i', VOLUME, '--whole', '--overlap', '0.25'], /--overlap expects a number in \[0\.5, 1\)/],
      [['-m', MODEL, '-i', VOLUME, '--component', '1,1,1', '--connectivity', '8'], /--connectivity expects one of 6, 26/],
      [['-m', MODEL, '-i', VOLUME, '--whole', '--class', '7'], /class 7 is not one of the model's 3 classes/],
      [['-m', MODEL, '-i', VOLUME], /choose a region M/],
    ];
    for (const [args, message] of cases) {
      const r = cli('explain-volume', ...args, ...outs);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(readdirSync(dir).sort(), ['x.nii'], `${args.join(' ')} wrote ${readdirSync(dir).join(', ')}`);
    }
  });
});
