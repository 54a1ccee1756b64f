/**
 * No ONNX file gives exit 1: the CLI on every committed zoo file (fixtures/zoo/*): `layers`,
 * `predict` and `explain` at the default layer exit 0 (done) or 2 (a typed refusal, one line,
 * naming the problem) — never 1 (an unexpected error).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ZOO } from './helpers/zoo.js';

const out = mkdtempSync(join(tmpdir(), 'sgc-zoo-cli-'));
after(() => rmSync(out, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
      env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const files = readdirSync(ZOO, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'generated')
  .flatMap((d) =>
    readdirSync(join(ZOO, d.name))
      .filter((f) => f.endsWith('.onnx'))
      .map((f) => ({ model: d.name, file: join(ZOO, d.name, f) })),
  );

test(`the CLI on every zoo file (${files.length}) exits 0 or 2, never 1`, { timeout: 900_000 }, async () => {
  assert.ok(files.length >= 10, `zoo files found: ${files.length}`);
  const jobs = files.flatMap(({ model, file }, i) => {
    const image = join(ZOO, model, 'input.png');
    return [
      ['layers', '-m', file],
      ['predict', '-m', file, '-i', image, '-o', join(out, `p${i}.png`)],
      ['explain', '-m', file, '-i', image, '--pixel', '20,20', '-o', join(out, `e${i}.png`)],
    ];
  });
  const results: Array<{ args: string[]; code: number | null; stderr: string }> = [];
  // Two at a time (the machine has two cores).
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < jobs.length) {
        const args = jobs[next++];
        results.push({ args, ...(await run(args)) });
      }
    }),
  );
  const bad = results.filter((r) => r.code !== 0 && r.code !== 2);
  assert.deepEqual(
    bad.map((r) => `${r.args.slice(0, 3).join(' ')}: exit ${r.code}: ${r.stderr.trim().split('\n')[0]}`),
    [],
  );
  for (const r of results.filter((x) => x.code === 2)) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
