/**
 * What `explain` writes: the JSON at full float32 precision (equal to the library's arrays), the
 * runtime named truly, and the figure and the JSON committed together (all or none), with no
 * temporary file left behind, even by a process that was killed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { pixel } from '../src/region/region.js';
import { loadExplainer, readImageFile } from '../src/node.js';
import { saveModel } from './helpers/save-model.js';
import { useCpu } from './helpers/setup.js';
import { tinyUnet } from './helpers/tiny-unet.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-cli-out-'));
let unet = '';
let image = '';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const temps = (folder: string) => readdirSync(folder).filter((f) => f.endsWith('.tmp'));

before(async () => {
  await useCpu();
  unet = await saveModel(tinyUnet(16, 3, 5), join(dir, 'unet'), { classNames: ['background', 'ring', 'bar'] });
  const png = new PNG({ width: 32, height: 24 });
  for (let i = 0; i < 32 * 24; i++) png.data.set([(i * 37) % 256, (i * 11) % 256, (i * 5) % 256, 255], i * 4);
  image = join(dir, 'image.png');
  writeFileSync(image, PNG.sync.write(png));
});

describe('explain --json: the numbers as computed', () => {
  test('α and the CAM equal the library Float32Arrays exactly (a one-pixel region at enc1, α ~1e-6); camMax is the CAM maximum; runtime tfjs-cpu', async () => {
    const json = join(dir, 'exact.json');
    const r = cli(
      'explain',
      '-m',
      unet,
      '-i',
      image,
      '--pixel',
      '7,5',
      '--class',
      '1',
      '--layer',
      'enc1',
      '--backend',
      'cpu',
      '-o',
      join(dir, 'exact.png'),
      '--json',
      json,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(readFileSync(json, 'utf8'));

    const tensors = tf.memory().numTensors;
    const explainer = await loadExplainer(unet);
    const e = await explainer.explain(await readImageFile(image), { region: pixel(7, 5), classId: 1, layer: 'enc1' });
    explainer.dispose();
    assert.equal(tf.memory().numTensors, tensors);
    assert.ok(e.weights);
    // The case the rounding broke: α of a one-pixel region is small.
    const smallest = Math.min(...Array.from(e.weights, (v) => (v === 0 ? Infinity : Math.abs(v))));
    assert.ok(smallest < 1e-4, `expected a small α, smallest |α| is ${smallest}`);

    assert.equal(got.weights.length, e.weights.length);
    e.weights.forEach((v, i) => assert.ok(got.weights[i] === v, `α[${i}]: JSON ${got.weights[i]} !== library ${v}`));
    assert.equal(got.cam.length, e.cam.length);
    e.cam.forEach((v, i) => assert.ok(got.cam[i] === v, `cam[${i}]: JSON ${got.cam[i]} !== library ${v}`));
    // camMax: the raw CAM's maximum (computed here from the library's CAM), not the heatmap's.
    let max = 0;
    for (const v of e.cam) max = Math.max(max, v);
    assert.ok(max > 0);
    assert.equal(got.camMax, max);
    assert.equal(got.scoreValue, e.scoreValue);
    assert.equal(got.runtime, 'tfjs-cpu');
  });

  test('an ONNX run names ONNX Runtime, not a TF.js backend', () => {
    const r = cli(
      'explain',
      '-m',
      'fixtures/onnx/unet-small.onnx',
      '-i',
      image,
      '--pixel',
      '10,10',
      '--class',
      '2',
      '-o',
      join(dir, 'onnx.png'),
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.runtime, 'onnxruntime-node (cpu)');
    assert.match(r.stderr, /on onnxruntime-node \(cpu\)/);
  });
});

describe('explain: the figure and the JSON are written together', () => {
  const args = (out: string, json: string) => [
    'explain',
    '-m',
    unet,
    '-i',
    image,
    '--whole',
    '--backend',
    'cpu',
    '-o',
    out,
    '--json',
    json,
  ];

  /** Runs with an old figure in place and a --json target that cannot be written: exit 2, one line, the old figure untouched. */
  function keepsOldFigure(name: string, json: (folder: string) => string, why: RegExp) {
    const folder = join(dir, name);
    mkdirSync(folder);
    const out = join(folder, 'figure.png');
    const old = Buffer.from('the old figure, byte for byte');
    writeFileSync(out, old);
    const r = cli(...args(out, json(folder)));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, why);
    assert.deepEqual(readFileSync(out), old);
    assert.deepEqual(temps(folder), []);
  }

  test('--json in a missing folder: the old figure stays byte-identical', () => {
    keepsOldFigure('missing', (f) => join(f, 'no-such-folder', 'r.json'), /does not exist/);
  });

  test('--json naming a directory: the old figure stays byte-identical', () => {
    keepsOldFigure(
      'dir',
      (f) => {
        mkdirSync(join(f, 'r.json'));
        return join(f, 'r.json');
      },
      /r\.json: it is a directory/,
    );
  });

  test('--json naming a read-only file: the old figure stays byte-identical, the JSON file too', () => {
    let ro = '';
    keepsOldFigure(
      'readonly',
      (f) => {
        ro = join(f, 'r.json');
        writeFileSync(ro, '{"old":true}\n');
        chmodSync(ro, 0o444);
        return ro;
      },
      /read-only/,
    );
    assert.equal(readFileSync(ro, 'utf8'), '{"old":true}\n');
  });

  test('--json equal to --out (also through another spelling of the path) is refused with exit 2, nothing written', () => {
    const folder = join(dir, 'same');
    mkdirSync(folder);
    const out = join(folder, 'figure.png');
    const r = cli(...args(out, join(folder, '.', 'figure.png')));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--out and --json are the same file/);
    assert.equal(existsSync(out), false);
  });

  test('temporary files of dead processes are removed by the next run in that folder; those of live ones are kept', async () => {
    const folder = join(dir, 'orphans');
    mkdirSync(folder);
    // A PID that surely belonged to a process that is gone: one we started and waited for.
    const dead = await new Promise<number>((done) => {
      const child = spawn(process.execPath, ['-e', '']);
      child.on('exit', () => done(child.pid as number));
    });
    const orphan = `.figure.png.${dead}.0123456789ab.tmp`;
    const alive = `.figure.png.${process.pid}.ba9876543210.tmp`;
    writeFileSync(join(folder, orphan), 'left by a SIGKILL');
    writeFileSync(join(folder, alive), 'still being written');
    const r = cli(...args(join(folder, 'figure.png'), join(folder, 'r.json')));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(temps(folder), [alive]);
    assert.ok(existsSync(join(folder, 'figure.png')) && existsSync(join(folder, 'r.json')));
  });

  test('a CLI killed with SIGKILL while its outputs are staged leaves temporary files that the next run removes', async () => {
    const folder = join(dir, 'killed');
    mkdirSync(folder);
    // A child that stages two outputs (the CLI's module) and waits; we kill it there.
    const script = `
      import { stageOutputs } from './src/io/output-set.ts';
      await stageOutputs([{ path: ${JSON.stringify(join(folder, 'figure.png'))}, bytes: new Uint8Array(9) }, { path: ${JSON.stringify(join(folder, 'r.json'))}, bytes: new Uint8Array(3) }]);
      process.stdout.write('staged\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((done) => child.stdout.on('data', () => done()));
    assert.equal(temps(folder).length, 2);
    const exited = new Promise((done) => child.on('exit', done));
    child.kill('SIGKILL');
    await exited;
    assert.equal(temps(folder).length, 2, 'SIGKILL leaves the temporary files');
    assert.equal(existsSync(join(folder, 'figure.png')), false);
    const r = cli(...args(join(folder, 'figure.png'), join(folder, 'r.json')));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(temps(folder), []);
  });

  test('SIGTERM or SIGINT while outputs are staged removes the temporary files and ends the process by that signal', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const folder = join(dir, `signal-${signal}`);
      mkdirSync(folder);
      const script = `
        import { stageOutputs } from './src/io/output-set.ts';
        await stageOutputs([{ path: ${JSON.stringify(join(folder, 'a.png'))}, bytes: new Uint8Array(9) }]);
        process.stdout.write('staged\\n');
        setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((done) => child.stdout.on('data', () => done()));
      assert.equal(temps(folder).length, 1);
      const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, sig) => done(sig)));
      child.kill(signal);
      assert.equal(await exited, signal);
      assert.deepEqual(temps(folder), []);
      assert.equal(existsSync(join(folder, 'a.png')), false);
    }
  });
});
