import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import { loadModel } from '../src/engine/tfjs/load.js';
import { useCpu } from './helpers/setup.js';

let server: Server;
let base = '';

before(async () => {
  await useCpu();
  // The browser's way in: model.json and weights over HTTP (here from a server on loopback).
  server = createServer((req, res) => {
    void (async () => {
      try {
        const body = await readFile(join('models/selfie', (req.url ?? '/').replace(/^\/+/, '')));
        res.writeHead(200, { 'content-type': req.url?.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => server.close());

test('loadModel reads a graph model from a URL, as a browser would', async () => {
  const adapter = await loadModel(`${base}/selfie.json`);
  assert.equal(adapter.kind, 'graph-model');
  assert.deepEqual(adapter.input, { height: 256, width: 256, channels: 3 });
  assert.equal(adapter.output.channels, 1);
  adapter.dispose();
});

test('a missing URL is a clear model error', async () => {
  await assert.rejects(
    loadModel(`${base}/missing.json`),
    (err: unknown) => err instanceof SegGradCamError && err.code === 'model' && /missing\.json/.test(err.message),
  );
});
