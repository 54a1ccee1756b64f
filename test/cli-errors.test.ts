/**
 * Bad input to the CLI, as a user gives it: every case exits 2 with exactly one line on stderr
 * that names the problem (no TF.js text, no stack), fast, and writes nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { hugeBlackPng } from './helpers/png.js';

const dir = mkdtempSync(join(tmpdir(), 'sgc-cli-err-'));

function cli(...args: string[]) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEG_GRAD_CAM_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

/** Exit 2, exactly one line matching `pattern`, no stack, and no figure written. */
function assertOneLine(r: ReturnType<typeof cli>, pattern: RegExp, out: string) {
  assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.equal(existsSync(out), false);
}

describe('CLI: bad input in one line', () => {
  for (const [name, json, pattern] of [
    [
      'an empty modelTopology',
      '{"modelTopology":{},"weightsManifest":[]}',
      /model cannot be loaded: modelTopology is not a Keras model config/,
    ],
    [
      'layers that are not a list',
      '{"modelTopology":{"class_name":"Model","config":{"layers":"oops"}},"weightsManifest":[]}',
      /config\.layers must be a list of layers \(got string\)/,
    ],
    [
      'a graph model whose nodes are not a list',
      '{"format":"graph-model","modelTopology":{"node":"x"},"weightsManifest":[]}',
      /graph model's modelTopology\.node must be a list of nodes \(got string\)/,
    ],
    [
      'a graph model without versions',
      '{"format":"graph-model","modelTopology":{"node":[]},"weightsManifest":[]}',
      /model\.json is malformed/,
    ],
    [
      'a topology of only "layers"',
      '{"modelTopology":{"layers":"oops"},"weightsManifest":[]}',
      /modelTopology is not a Keras model config/,
    ],
  ] as const) {
    test(`a malformed model topology: ${name}`, () => {
      const model = join(dir, `${name.replace(/\W+/g, '-')}.json`);
      writeFileSync(model, json);
      const out = join(dir, 'never.png');
      assertOneLine(cli('explain', '-m', model, '--whole', '--backend', 'cpu', '-o', out), pattern, out);
    });
  }

  test("--class-region --class 'digit 7' with no pixel of it names 'digit 7', not the index", () => {
    const out = join(dir, 'never.png');
    const r = cli('explain', '--class-region', '--class', 'digit 7', '--backend', 'cpu', '-o', out);
    assertOneLine(r, /empty region: no pixel is predicted as 'digit 7'/, out);
  });

  test('a 20000x20000 PNG (a ~50 kB file) is refused from its header: exit 2 at once, naming the size and the limit', () => {
    const image = join(dir, 'huge.png');
    writeFileSync(image, hugeBlackPng(20000, 20000));
    const out = join(dir, 'never.png');
    const r = cli('explain', '-i', image, '--whole', '--backend', 'cpu', '-o', out);
    assertOneLine(r, /huge\.png: the image is 20000x20000 = 400000000 pixels, more than the limit of 268402689/, out);
    // Decoding it took 37 s and 6.3 GB before ending in exit 1; a header check costs nothing beyond the CLI's start.
    assert.ok(r.seconds < 30, `${r.seconds.toFixed(1)} s`);
  });

  test('--limit-input-pixels: a lower limit refuses the sample tile; a bad value is a usage error', () => {
    const out = join(dir, 'never.png');
    assertOneLine(
      cli('explain', '--whole', '--limit-input-pixels', '4095', '--backend', 'cpu', '-o', out),
      /64x64 = 4096 pixels, more than the limit of 4095/,
      out,
    );
    assertOneLine(
      cli('predict', '--limit-input-pixels', 'lots', '-o', out),
      /--limit-input-pixels expects an integer >= 0, got 'lots'/,
      out,
    );
  });
});
