// `seg-grad-cam train --dataset bias --arm …`: bad combinations are usage errors (exit 2, one line, nothing written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

test('train: --arm without --dataset bias, an unknown arm, and the bias set without an arm exit 2', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sgc-bias-train-')), 'run');
  for (const [args, message] of [
    [['--arm', 'strong'], /--arm needs --dataset bias/],
    [['--dataset', 'bias', '--arm', 'medium'], /--arm expects one of strong, weak, none, control/],
    [['--dataset', 'bias'], /needs an arm/],
    [['--dataset', 'bias', '--arm', 'weak', '--workers', '2'], /one thread/],
  ] as const) {
    const r = cli('train', ...args, '--steps', '1', '--out', out);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(!existsSync(join(out, 'model.json')));
  }
});
