/**
 * The package as a user gets it: `npm pack`, `npm install` of the tarball into an empty project
 * (only the npm registry is reachable; cached packages are used first), then the installed CLI's
 * `explain` on the bundled U-Net and on an ONNX fixture, and an ESM script importing the library
 * (TF.js and ONNX, by path and by bytes). Its numbers are checked against the library run from
 * source in this process. Slow (a build, an install): outside CI, SEG_GRAD_CAM_SKIP_PACK=1 skips it.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pixel, classRegion } from '../src/region/region.js';
import { loadExplainer } from '../src/node.js';
import { readImageFile } from '../src/io/files.js';
import { maxAbs, maxAbsDiff, useCpu } from './helpers/setup.js';

const skip =
  !process.env.CI && process.env.SEG_GRAD_CAM_SKIP_PACK === '1'
    ? 'SEG_GRAD_CAM_SKIP_PACK=1 (packs, builds and installs the package: 3.5-5 minutes on a busy 2-core machine; CI always runs it)'
    : false;

const ONNX = 'fixtures/onnx/unet-small.onnx';
const UNET = 'models/unet-texture-mnist-biased/model.json';
const IMAGE = 'fixtures/tiles/sample.png';

let dir = '';
let consumer = '';

/** The environment of a fresh shell: no npm_* variables inherited from an outer `npm test` (e.g. this repository's .npmrc). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && !/^ONNXRUNTIME_NODE_INSTALL/i.test(k)) env[k] = v;
  }
  return env;
}

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

before(async () => {
  if (skip) return;
  await useCpu();
  dir = mkdtempSync(join(tmpdir(), 'seg-grad-cam-pack-'));
  ok(run('npm', ['pack', '--pack-destination', dir, '--no-fund', '--no-audit'], process.cwd()), 'npm pack');
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote no tarball');
  consumer = join(dir, 'consumer');
  ok(run('mkdir', ['-p', consumer], dir), 'mkdir');
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  ok(run('npm', ['install', join(dir, tarball), '--prefer-offline', '--no-audit', '--no-fund'], consumer), 'npm install of the tarball');
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the tarball installs with no download beyond the npm registry: onnxruntime-node is an optional peer, not installed', { skip }, () => {
  assert.ok(existsSync(join(consumer, 'node_modules/seg-grad-cam/dist/index.js')));
  assert.ok(existsSync(join(consumer, 'node_modules/onnxruntime-web')));
  assert.equal(existsSync(join(consumer, 'node_modules/onnxruntime-node')), false);
});

test("the installed CLI's explain runs on the bundled U-Net and on an ONNX model", { skip }, () => {
  const cli = join(consumer, 'node_modules/.bin/seg-grad-cam');
  ok(
    run(cli, ['explain', '--class-region', '--class', 'digit 3', '--out', 'unet.png', '--json', 'unet.json'], consumer),
    'explain (U-Net)',
  );
  const onnxModel = join(consumer, 'node_modules/seg-grad-cam', ONNX);
  ok(
    run(cli, ['explain', '--model', onnxModel, '--pixel', '10,10', '--out', 'onnx.png', '--json', 'onnx.json'], consumer),
    'explain (ONNX)',
  );
  for (const png of ['unet.png', 'onnx.png']) {
    assert.deepEqual([...readFileSync(join(consumer, png)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${png} is a PNG`);
  }
  const unet = JSON.parse(readFileSync(join(consumer, 'unet.json'), 'utf8')) as { className: string; layer: { name: string } };
  assert.equal(unet.className, 'digit 3');
  assert.equal(unet.layer.name, 'bottleneck_relu2');
  const onnx = JSON.parse(readFileSync(join(consumer, 'onnx.json'), 'utf8')) as { layer: { name: string }; regionPixels: number };
  assert.equal(onnx.layer.name, '/bottleneck/Relu_1_output_0');
  assert.equal(onnx.regionPixels, 1);
});

interface Result {
  score: number;
  weights: number[];
  cam: number[];
}

test(
  'an ESM script imports the installed library (TF.js and ONNX; path and bytes): the same numbers as the library from source',
  { skip },
  async () => {
    const script = `
import { readFile } from 'node:fs/promises';
import { Explainer, openModel, pixel, regions, SegGradCamError, setupBackend } from 'seg-grad-cam';
import { loadExplainer, readImageFile } from 'seg-grad-cam/node';
const root = new URL('./node_modules/seg-grad-cam/', import.meta.url).pathname;
await setupBackend('cpu');
const image = await readImageFile(root + '${IMAGE}');
const out = (e) => ({ score: e.scoreValue, weights: Array.from(e.weights), cam: Array.from(e.cam) });
const tfjs = await loadExplainer(root + '${UNET}');
const unet = out(await tfjs.explain(image, { region: regions.classRegion(), classId: 'digit 3' }));
const onnx = await loadExplainer(root + '${ONNX}');
const onnxPath = out(await onnx.explain(image, { region: pixel(10, 10), classId: 4, layer: '/enc.1/Relu_1_output_0' }));
const bytes = new Explainer(await openModel(await readFile(root + '${ONNX}')));
const onnxBytes = out(await bytes.explain(image, { region: pixel(10, 10), classId: 4, layer: '/enc.1/Relu_1_output_0' }));
const forced = await loadExplainer(root + '${ONNX}', { runtime: 'onnxruntime-node' }).then(
  () => 'loaded',
  (e) => (e instanceof SegGradCamError ? e.code + ': ' + e.message : String(e)),
);
console.log(JSON.stringify({ unet, onnxPath, onnxBytes, forced }));
`;
    writeFileSync(join(consumer, 'check.mjs'), script);
    const got = JSON.parse(
      ok(run(process.execPath, ['check.mjs'], consumer), 'the ESM script')
        .trim()
        .split('\n')
        .pop() ?? '',
    ) as Record<'unet' | 'onnxPath' | 'onnxBytes', Result> & { forced: string };
    // Asking for the native runtime where it is not installed: a typed error saying how to get it.
    assert.match(got.forced, /^model: .*unet-small\.onnx: install onnxruntime-node to run \.onnx models/);

    // The reference: the library from source in this process (cpu backend; onnxruntime-node, the dev dependency).
    const image = await readImageFile(IMAGE);
    const tfjs = await loadExplainer(UNET);
    const unet = await tfjs.explain(image, { region: classRegion(), classId: 'digit 3' });
    const onnxEx = await loadExplainer(ONNX);
    const onnx = await onnxEx.explain(image, { region: pixel(10, 10), classId: 4, layer: '/enc.1/Relu_1_output_0' });
    tfjs.dispose();
    onnxEx.dispose();

    assert.ok(
      Math.abs(got.unet.score - unet.scoreValue) <= 1e-4 * Math.abs(unet.scoreValue),
      `U-Net S ${got.unet.score} vs ${unet.scoreValue}`,
    );
    assert.ok(maxAbsDiff(got.unet.weights, unet.weights!) <= 1e-4 * maxAbs(unet.weights!));
    assert.ok(maxAbsDiff(got.unet.cam, unet.cam) <= 1e-4 * maxAbs(unet.cam));
    // The installed package runs ONNX on onnxruntime-web (wasm); the reference on onnxruntime-node.
    for (const r of [got.onnxPath, got.onnxBytes]) {
      assert.ok(Math.abs(r.score - onnx.scoreValue) <= 1e-5 * Math.abs(onnx.scoreValue), `ONNX S ${r.score} vs ${onnx.scoreValue}`);
      assert.ok(maxAbs(onnx.cam) > 0, 'the reference CAM is not empty');
      assert.ok(maxAbsDiff(r.weights, onnx.weights!) <= 1e-5 * maxAbs(onnx.weights!));
      assert.ok(maxAbsDiff(r.cam, onnx.cam) <= 1e-5 * maxAbs(onnx.cam));
    }
  },
);
