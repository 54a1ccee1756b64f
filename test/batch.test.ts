import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { readItems } from '../src/batch/manifest.js';
import { decodeNpyFloat32, encodeNpyFloat32 } from '../src/batch/npy.js';
import { components, planRequests } from '../src/batch/plan.js';
import { explainDataset } from '../src/batch/run.js';
import type { RequestResult } from '../src/batch/item.js';
import { aggregateByClass, bootstrapMean, gtStats } from '../src/batch/stats.js';
import { readImageFile } from '../src/io/files.js';
import { loadExplainer } from '../src/node.js';
import { classRegion } from '../src/region/region.js';
import { BATCH_MODEL, writeTiles } from './batch-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-batch-'));
const PYTHON = '/usr/bin/python3';
const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

describe('.npy writer', () => {
  test('numpy reads back the same float32 values and shape', { skip: hasNumpy ? false : 'Debian python3-numpy is not installed' }, () => {
    const data = Float32Array.from([0, 1.5, -2.25, 1e-30, 3.4028234663852886e38, Math.PI, -0, 7e-6, 123456.789, 1 / 3, 2, 3]);
    const path = join(dir, 'a.npy');
    const bytes = encodeNpyFloat32(data, [3, 4]);
    assert.equal((10 + new DataView(bytes.buffer).getUint16(8, true)) % 64, 0, 'header padded to 64 bytes');
    writeFileSync(path, bytes);
    const py = spawnSync(
      PYTHON,
      ['-c', 'import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, a.astype("<f4").tobytes().hex())', path],
      { encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const [dtype, ...rest] = py.stdout.trim().split(' ');
    assert.equal(dtype, 'float32');
    assert.equal(rest.slice(0, 2).join(' '), '(3, 4)');
    assert.equal(rest[2], Buffer.from(data.buffer).toString('hex'));
    // And numpy's own file reads back through ours.
    const back = join(dir, 'b.npy');
    const w = spawnSync(PYTHON, ['-c', 'import numpy, sys; numpy.save(sys.argv[1], numpy.arange(6, dtype="<f4").reshape(2, 3) / 7)', back]);
    assert.equal(w.status, 0);
    const { data: d, shape } = decodeNpyFloat32(readFileSync(back));
    assert.deepEqual(shape, [2, 3]);
    assert.deepEqual(
      [...d],
      [0, 1, 2, 3, 4, 5].map((k) => Math.fround(Math.fround(k) / 7)),
    );
  });
});

describe('ground-truth statistics against hand-made maps', () => {
  // 4x4 heatmap; the object G is the top-left 2x2 block; M the left half.
  const h = Float32Array.from([1, 0.5, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0.25, 0, 0, 0.25, 0.5]);
  const G = Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const M = Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
  test('masses, pointing game and IoU', () => {
    // Σh = 3; in G: 2; in M: 2; h ≥ 0.5: {0, 1, 4, 15}; ∩ G = 3, ∪ = 5.
    const s = gtStats(h, M, G, 0.5);
    assert.equal(s.massInObject, 2 / 3);
    assert.equal(s.massOnContext, 1 - 2 / 3);
    // G is 4 of 16 pixels: a uniform map would put 1/4 of its mass there.
    assert.equal(s.objectEnrichment, 2 / 3 / (4 / 16));
    assert.equal(s.massInRegion, 2 / 3);
    assert.equal(s.pointingHit, true);
    assert.equal(s.iou, 3 / 5);
    // The maximum outside the object: a miss.
    const h2 = Float32Array.from(h);
    h2[15] = 2;
    assert.equal(gtStats(h2, M, G, 0.5).pointingHit, false);
  });
  test('an empty map has no masses and no pointing result', () => {
    const s = gtStats(new Float32Array(16), M, G, 0.5);
    assert.deepEqual(s, { massInRegion: null, massInObject: null, massOnContext: null, objectEnrichment: null, pointingHit: null, iou: 0 });
  });
  test('bootstrap: constant values give a point interval; the interval holds the mean', () => {
    assert.deepEqual(bootstrapMean([0.25, 0.25, 0.25]), { n: 3, mean: 0.25, lo: 0.25, hi: 0.25 });
    const e = bootstrapMean([0, 1, 0, 1, 1, 0, 1, 1], 2000, 1);
    assert.equal(e.mean, 5 / 8);
    assert.ok((e.lo as number) < 5 / 8 && (e.hi as number) > 5 / 8 && (e.lo as number) >= 0 && (e.hi as number) <= 1);
    // The standard error is sqrt(p(1-p)/n) = 0.171: a 95 % interval about ±0.34 wide.
    assert.ok((e.hi as number) - (e.lo as number) > 0.45 && (e.hi as number) - (e.lo as number) < 0.85);
  });
  test('classes are ranked by mass on context', () => {
    const stat = (ctx: number) => ({
      massInRegion: 0,
      massInObject: 1 - ctx,
      massOnContext: ctx,
      objectEnrichment: 1,
      pointingHit: ctx < 0.5,
      iou: 0,
    });
    const ranked = aggregateByClass([
      { classIndex: 1, stats: stat(0.2) },
      { classIndex: 2, stats: stat(0.9) },
      { classIndex: 2, stats: stat(0.7) },
      { classIndex: 3, stats: stat(0.5) },
      { classIndex: 4 },
    ]);
    assert.deepEqual(
      ranked.map((c) => c.classIndex),
      [2, 3, 1],
    );
    assert.ok(Math.abs((ranked[0].stats.massOnContext.mean as number) - 0.8) < 1e-12);
    assert.equal(ranked[2].stats.pointingHit.mean, 1);
  });
});

describe('inputs and requests', () => {
  test('CSV and JSON Lines manifests: paths relative to the manifest, columns optional', async () => {
    const sub = join(dir, 'm');
    spawnSync('mkdir', ['-p', sub]);
    writeFileSync(join(sub, 'list.csv'), 'image,mask,region,class\na.png,a-gt.png,whole,1;digit 3\n"b, c.png",,,\n');
    const csv = await readItems(join(sub, 'list.csv'));
    assert.deepEqual(csv, [
      { id: 'a.png', image: join(sub, 'a.png'), mask: join(sub, 'a-gt.png'), region: 'whole', classes: ['1', 'digit 3'] },
      { id: 'b, c.png', image: join(sub, 'b, c.png') },
    ]);
    writeFileSync(join(sub, 'list.jsonl'), '{"image":"x/a.png","class":[2,3]}\n\n{"image":"b.png","region":"gt-object"}\n');
    const jl = await readItems(join(sub, 'list.jsonl'));
    assert.deepEqual(jl, [
      { id: 'x/a.png', image: join(sub, 'x/a.png'), classes: ['2', '3'] },
      { id: 'b.png', image: join(sub, 'b.png'), region: 'gt-object' },
    ]);
    writeFileSync(join(sub, 'dup.csv'), 'image\na.png\na.png\n');
    await assert.rejects(readItems(join(sub, 'dup.csv')), /listed twice/);
    writeFileSync(join(sub, 'bad.csv'), 'image,region\na.png,blob\n');
    await assert.rejects(readItems(join(sub, 'bad.csv')), /region 'blob' is not one of/);
  });

  test('4-connected components and the each-object / gt-object / present rules', () => {
    // 4x3 grid: two objects of class 1 (touching only diagonally), one of class 2.
    const labels = Int32Array.from([1, 0, 0, 2, 0, 1, 0, 2, 0, 1, 0, 0]);
    assert.deepEqual(
      components(
        Uint8Array.from(labels, (v) => (v === 1 ? 1 : 0)),
        4,
        3,
      ),
      [[0], [5, 9]],
    );
    const ctx = { classCount: 3, imageWidth: 8, imageHeight: 6, labels, outWidth: 4, outHeight: 3 };
    const objects = planRequests({ classes: ['1'], region: 'each-object' }, ctx, {});
    // Cell (1, 1) of a 4x3 grid over an 8x6 image: its centre pixel is (3, 3).
    assert.deepEqual(
      objects.map((p) => [p.key, p.request.region]),
      [
        ['1/each-object-0/bottleneck/seg-grad-cam', { kind: 'object', x: 1, y: 1 }],
        ['1/each-object-1/bottleneck/seg-grad-cam', { kind: 'object', x: 3, y: 3 }],
      ],
    );
    const present = planRequests({ classes: 'present', ignoreClasses: ['0'], region: 'class-region', methods: ['a', 'b'] }, ctx, {});
    assert.deepEqual(
      present.map((p) => p.key),
      ['1/class-region/bottleneck/a', '1/class-region/bottleneck/b', '2/class-region/bottleneck/a', '2/class-region/bottleneck/b'],
    );
    assert.deepEqual(present[0].request.region, classRegion());
    const gt = new Uint8Array(48);
    gt[0] = gt[1] = gt[9] = 2;
    gt[47] = 2;
    const gtObjects = planRequests({ classes: 'present', ignoreClasses: ['0'], region: 'gt-object' }, { ...ctx, gt }, {});
    assert.deepEqual(
      gtObjects.map((p) => [p.key, [...(p.gt as Uint8Array)].flatMap((v, i) => (v ? [i] : []))]),
      [
        ['2/gt-object-0/bottleneck/seg-grad-cam', [0, 1, 9]],
        ['2/gt-object-1/bottleneck/seg-grad-cam', [47]],
      ],
    );
    assert.throws(() => planRequests({ classes: ['9'], region: 'whole' }, ctx, {}), /unknown class '9'/);
  });
});

describe('a run over synthetic tiles', () => {
  let manifest = '';
  before(async () => {
    await tf.setBackend('cpu');
    manifest = await writeTiles(join(dir, 'tiles'), 5, { corrupt: [3] });
  });

  test('writes every request once, reports the corrupt image, and each .npy is the library explanation', async () => {
    const out = join(dir, 'out');
    const plan = {
      classes: 'present' as const,
      ignoreClasses: ['0'],
      region: 'class-region' as const,
      methods: ['seg-grad-cam', 'hires-cam'],
    };
    const seen: string[] = [];
    const progress: number[] = [];
    const tensors = tf.memory().numTensors;
    const it = explainDataset({
      model: BATCH_MODEL,
      backend: 'cpu',
      input: manifest,
      outDir: out,
      plan,
      onProgress: (p) => progress.push(p.done),
    });
    let r = await it.next();
    while (!r.done) {
      seen.push(r.value.item);
      r = await it.next();
    }
    const summary = r.value;
    assert.equal(tf.memory().numTensors, tensors, 'the run disposes its model and every forward pass');
    assert.equal(seen.length, 5);
    assert.deepEqual(progress, [0, 1, 2, 3, 4, 5]);
    assert.equal(summary.failedItems, 1);
    const errors = readFileSync(join(out, 'errors.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { item: string; error: { code: string } });
    assert.deepEqual(
      errors.map((e) => [e.item, e.error.code]),
      [['img/tile-003.png', 'image']],
    );
    const results = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RequestResult);
    assert.equal(results.length, summary.requests);
    assert.equal(new Set(results.map((x) => `${x.item} ${x.request}`)).size, results.length);
    // Independently: the library on each image, the classes predicted there (without the background).
    const explainer = await loadExplainer(BATCH_MODEL);
    let expected = 0;
    for (const k of [0, 1, 2, 4]) {
      const id = `img/tile-00${k}.png`;
      const image = await readImageFile(join(dir, 'tiles', id));
      const labels = (await explainer.predict(image)).labels;
      const classes = [...new Set(labels)].filter((c) => c !== 0).sort((a, b) => a - b);
      for (const c of classes)
        for (const method of ['seg-grad-cam', 'hires-cam']) {
          expected++;
          const row = results.find((x) => x.item === id && x.classIndex === c && x.method === method);
          assert.ok(row, `${id} class ${c} ${method}`);
          const e = await explainer.explain(image, { region: classRegion(), classId: c, method });
          const npy = decodeNpyFloat32(readFileSync(join(out, row.paths.cam)));
          assert.deepEqual(npy.shape, [e.camHeight, e.camWidth]);
          assert.deepEqual(npy.data, e.cam);
          assert.equal(row.S, e.scoreValue);
          assert.equal(row.layer, explainer.bottleneck);
          assert.ok(row.stats && row.stats.massOnContext !== null);
        }
    }
    assert.equal(results.length, expected);
    // Nothing left behind but the outputs.
    const temps = readdirSync(out, { recursive: true }).filter((n) => String(n).endsWith('.tmp'));
    assert.deepEqual(temps, []);
  });

  test('the CLI refuses a bad class with exit 2 before writing anything, and exits 3 when items failed', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'batch', ...args], {
        encoding: 'utf8',
        env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
      });
    const bad = cli(manifest, '-o', join(dir, 'never'), '-m', BATCH_MODEL, '--classes', 'digit 11');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^seg-grad-cam: unknown class 'digit 11'/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.throws(() => readdirSync(join(dir, 'never')));
    const ok = cli(manifest, '-o', join(dir, 'cli-out'), '-m', BATCH_MODEL, '--classes', '0', '--region', 'whole', '--backend', 'cpu');
    assert.equal(ok.status, 3, ok.stderr);
    assert.match(ok.stderr, /1 of 5 items failed/);
    assert.equal(
      readFileSync(join(dir, 'cli-out', 'results.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
      4,
    );
  });
});
