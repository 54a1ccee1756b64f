import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build } from 'esbuild';

test('the library entry point bundles for the browser with no Node built-in', async () => {
  const result = await build({
    entryPoints: ['src/index.ts'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  assert.equal(result.errors.length, 0);
  const inputs = Object.keys(result.metafile.inputs);
  const nodeOnly = inputs.filter((p) =>
    /src\/(io\/files|io\/labels|engine\/tfjs\/load-node|engine\/open-node|engine\/onnx\/node|node\.ts|cli\/)|onnxruntime-node/.test(p),
  );
  assert.deepEqual(nodeOnly, [], `Node-only modules leaked into the browser bundle: ${nodeOnly.join(', ')}`);
  // ONNX is reachable from the browser entry (openModel), on onnxruntime-web.
  assert.ok(inputs.some((p) => p.includes('src/engine/onnx/adapter.ts')));
});
