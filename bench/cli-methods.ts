/**
 * Benchmark (not a test): the CLI's own explain time per method (`milliseconds` of `explain --json`), median of
 * `--runs` (default 3) processes, on the bundled U-Net (tfjs-wasm) and on the ONNX U-Net fixture (onnxruntime-node).
 * Methods a model refuses are listed with the refusal. Prints the machine and its load before and after.
 *
 *   node --import tsx bench/cli-methods.ts [--runs 3] [--methods seg-grad-cam,shapley-cam,…] [--models unet,onnx]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { methodNames } from '../src/methods/index.js';
import { machineLine, median } from './timing.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const runs = Math.max(1, Number(opt('runs', '3')));
const only = opt('methods', '').split(',').filter(Boolean);
const models: Record<string, string[]> = {
  unet: ['--class', 'digit 3', '--class-region'],
  onnx: ['-m', 'fixtures/onnx/unet-small.onnx', '-i', 'fixtures/tiles/sample.png', '--box', '10,10,40,40', '--class', '1'],
};
const which = opt('models', 'unet,onnx').split(',');
const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-methods-'));
process.stdout.write(`${machineLine()}\nmodel | method | median ms | runs (ms)\n`);
try {
  for (const model of which) {
    for (const method of methodNames().filter((m) => only.length === 0 || only.includes(m))) {
      const times: number[] = [];
      let refused = '';
      for (let r = 0; r < runs && !refused; r++) {
        const json = join(dir, `${model}-${method}-${r}.json`);
        const p = spawnSync(
          process.execPath,
          ['--import', 'tsx', 'src/cli/run.ts', 'explain', ...models[model], '--method', method, '--json', json, '-o', join(dir, 'x.png')],
          { encoding: 'utf8' },
        );
        if (p.status !== 0) refused = p.stderr.trim().split('\n')[0];
        else times.push((JSON.parse(readFileSync(json, 'utf8')) as { milliseconds: number }).milliseconds);
      }
      process.stdout.write(
        refused
          ? `${model} | ${method} | refused: ${refused} |\n`
          : `${model} | ${method} | ${median(times).toFixed(0)} | ${times.map((t) => t.toFixed(0)).join(', ')}\n`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${machineLine()} (at the end)\n`);
