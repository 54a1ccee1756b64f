/** The explorer's pure parts, in Node: link state, labels files, model files, comparisons, the static server, the catalog. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import type { Region } from '../src/region/region.js';
import { collectBundled } from '../web/bundled.js';
import { serve } from '../web/serve.js';
import { parseLabelsWithColors as parseLabels } from '../src/io/labels.js';
import { checkWeightBytes, isOnnxName, modelFromFiles, onnxFromFiles, type FileLike } from '../web/src/model-files.js';
import type { LayerRow } from '../web/src/protocol.js';
import { Cancelled, expectedPasses, PassMeter } from '../web/src/pass-meter.js';
import type { ModelAdapter, Objective } from '../src/engine/contract.js';
import type * as tf from '@tensorflow/tfjs';
import { cosine, resolutionChanges } from '../web/src/ui/compare.js';
import { decodeRegion, decodeRuns, decodeState, encodeRegion, encodeRuns, encodeState } from '../web/src/url-state.js';

test('every region form survives the trip through the URL', () => {
  const mask = new Uint8Array(12 * 5);
  mask.fill(1, 7, 19);
  mask[59] = 1;
  const regions: Region[] = [
    { kind: 'pixel', x: 3, y: 9 },
    {
      kind: 'pixels',
      points: [
        [1, 2],
        [30, 4],
      ],
    },
    { kind: 'box', x0: 1, y0: 2, x1: 10, y1: 20 },
    { kind: 'object', x: 0, y: 0 },
    { kind: 'class' },
    { kind: 'whole' },
    { kind: 'mask', width: 12, height: 5, mask },
  ];
  for (const r of regions) {
    assert.deepEqual(decodeRegion(encodeRegion(r)), r);
  }
  assert.throws(() => decodeRegion('box:1,2,3'));
  assert.throws(() => decodeRegion('lasso:1,2'));
  assert.throws(() => decodeRuns('2.3', 9), /cover/);
  assert.throws(() => decodeRuns('5.5', 9), /bad mask runs/);
  assert.deepEqual(decodeRuns(encodeRuns(new Uint8Array([1, 1, 0, 1])), 4), new Uint8Array([1, 1, 0, 1]));
});

test('the view state round-trips through a query string and ignores damage', () => {
  const view = {
    model: 'selfie',
    image: 'samples/images/astronaut.png',
    layer: 'add_4__xeno_compat__1',
    class: 1,
    region: { kind: 'box' as const, x0: 4, y0: 5, x1: 60, y1: 70 },
    method: 'hires-cam',
    score: 'probability' as const,
    colormap: 'jet',
    opacity: 0.3,
    backend: 'wasm',
  };
  assert.deepEqual(decodeState(`?${encodeState(view)}`), view);
  assert.deepEqual(decodeState('model=url%3Ahttp%3A%2F%2Fx%2Fm.json&region=nonsense&class=x&opacity=7&score=odd'), {
    model: 'url:http://x/m.json',
    opacity: 1,
  });
});

test('the region tool travels in the URL too', () => {
  const view = { model: 'unet-biased', class: 8, tool: 'object' };
  assert.match(encodeState(view), /tool=object/);
  assert.deepEqual(decodeState(`?${encodeState(view)}`), view);
  assert.equal(decodeState('?model=x').tool, undefined);
});

test('negative, the contrast class and the scaling travel in the URL; damaged values are dropped', () => {
  const view = { model: 'unet-biased', method: 'grad-cam++', negative: true, contrast: 3, normalize: 'minmax' as const };
  const q = encodeState(view);
  assert.match(q, /negative=1/);
  assert.match(q, /contrast=3/);
  assert.deepEqual(decodeState(`?${q}`), view);
  assert.doesNotMatch(encodeState({ model: 'x', negative: false }), /negative/);
  assert.deepEqual(decodeState('?model=x&negative=yes&contrast=-1&normalize=sum'), { model: 'x' });
});

/** An adapter that records its calls; its passes return what the counts need. */
function fakeAdapter(log: string[]): ModelAdapter {
  const pass = {
    output: null,
    activation: () => null,
    gradient: async () => (log.push('gradient'), {}),
    gradientBatch: async (_layer: string, objectives: unknown[]) => (log.push('gradientBatch'), objectives.map(() => ({}))),
    dispose: () => undefined,
  };
  return {
    kind: 'fake',
    maxBatch: 4,
    forward: async () => (log.push('forward'), pass),
    scores: async (x: { shape: number[] }) => (log.push('scores'), new Float32Array(x.shape[0])),
    inputGradients: async (x: { shape: number[] }) => (
      log.push('inputGradients'),
      { gradients: null, scores: new Float32Array(x.shape[0]) }
    ),
    layers: () => [],
    dispose: () => log.push('dispose'),
  } as unknown as ModelAdapter;
}

test('the pass meter counts forward and backward passes and stops a stale job before its next pass (never the shared forward pass)', async () => {
  const log: string[] = [];
  const meter = new PassMeter();
  const adapter = meter.wrap(fakeAdapter(log));
  assert.equal(adapter.kind, 'fake');
  assert.equal(adapter.maxBatch, 4);
  let stale = false;
  const seen: Array<[number, number]> = [];
  const count = meter.start({ isStale: () => stale, onPass: (c) => seen.push([c.forward, c.backward]) });
  const batch = (n: number) => ({ shape: [n, 2, 2, 3] }) as unknown as tf.Tensor4D;
  const pass = await adapter.forward(batch(1));
  await pass.gradient('l', {} as Objective);
  await pass.gradientBatch?.('l', [{}, {}, {}] as Objective[]);
  await adapter.scores(batch(3), {} as Objective);
  await adapter.inputGradients(batch(2), {} as Objective);
  assert.deepEqual(count, { forward: 1 + 3 + 2, backward: 1 + 3 + 2 });
  assert.deepEqual(seen, [
    [1, 0],
    [1, 1],
    [1, 4],
    [4, 4],
    [6, 6],
  ]);
  stale = true;
  await assert.rejects(adapter.scores(batch(1), {} as Objective), Cancelled);
  await assert.rejects(adapter.inputGradients(batch(1), {} as Objective), Cancelled);
  await assert.rejects(pass.gradient('l', {} as Objective), Cancelled);
  // The forward pass may be shared with later questions: it is never cancelled.
  await adapter.forward(batch(1));
  assert.deepEqual(log, ['forward', 'gradient', 'gradientBatch', 'scores', 'inputGradients', 'forward']);
  meter.end();
  // Outside a job nothing is stopped or counted.
  await adapter.scores(batch(1), {} as Objective);
  assert.deepEqual(count, { forward: 7, backward: 6 });
  adapter.dispose();
  assert.equal(log.at(-1), 'dispose');
});

test('the passes a multi-pass method will run, from its options', () => {
  assert.equal(expectedPasses({ name: 'smoothgrad', samples: 25 }, 0), 25);
  assert.equal(expectedPasses({ name: 'integrated-gradients', steps: 32 }, 0), 33);
  assert.equal(expectedPasses({ name: 'grid-saliency', iterations: 100 }, 0), 102);
  assert.equal(expectedPasses({ name: 'score-cam', maxChannels: 32 }, 16), 17);
  assert.equal(expectedPasses({ name: 'score-cam', maxChannels: 32 }, 256), 33);
  assert.equal(expectedPasses({ name: 'seg-grad-cam' }, 256), null);
});

test('labels files: names, names with colours, JSON forms; bad files are refused', () => {
  assert.deepEqual(parseLabels('background\nperson\n'), { names: ['background', 'person'], colors: [null, null] });
  assert.deepEqual(parseLabels('sky #87ceeb\nroad, #333\ntall tree\t#0a0'), {
    names: ['sky', 'road', 'tall tree'],
    colors: [
      [135, 206, 235],
      [51, 51, 51],
      [0, 170, 0],
    ],
  });
  assert.deepEqual(parseLabels('["a", {"name": "b", "color": "#ff0000"}]'), { names: ['a', 'b'], colors: [null, [255, 0, 0]] });
  assert.throws(() => parseLabels('   '), /empty/);
  assert.throws(() => parseLabels('[1, 2]'), /names/);
  assert.throws(() => parseLabels('[oops'), /JSON/);
  assert.throws(() => parseLabels('\u0001\u0002binary'), /not text/);
});

const fileLike = (name: string, content: string | Uint8Array): FileLike => {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  return {
    name,
    size: bytes.byteLength,
    text: async () => new TextDecoder().decode(bytes),
    arrayBuffer: async () => bytes.slice().buffer,
  };
};

test('model files chosen together: missing weights, mismatched weights and non-models are named', async () => {
  const json = JSON.stringify({
    format: 'layers-model',
    modelTopology: { class_name: 'Model' },
    weightsManifest: [
      { paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [{ name: 'k', shape: [2, 3], dtype: 'float32' }] },
    ],
  });
  const shard = (n: number) => fileLike(`group1-shard${n}of2.bin`, new Uint8Array(12));
  const art = await modelFromFiles([fileLike('model.json', json), shard(1), shard(2)]);
  assert.equal((art.weightData as ArrayBuffer).byteLength, 24);
  assert.doesNotThrow(() => checkWeightBytes(art));
  const short = await modelFromFiles([fileLike('model.json', json), shard(1), fileLike('group1-shard2of2.bin', new Uint8Array(4))]);
  assert.throws(
    () => checkWeightBytes(short),
    (e: unknown) =>
      e instanceof SegGradCamError &&
      /weights do not match model\.json: its manifest needs 24 bytes, the weight files hold 16/.test(e.message),
  );

  await assert.rejects(modelFromFiles([fileLike('model.json', json), shard(1)]), /needs the weight file group1-shard2of2\.bin/);
  await assert.rejects(modelFromFiles([shard(1)]), /no model\.json/);
  await assert.rejects(modelFromFiles([fileLike('a.json', json), fileLike('b.json', json)]), /choose one model\.json, not 2/);
  await assert.rejects(modelFromFiles([fileLike('model.json', '{"hello": 1}')]), /not a TF\.js model\.json/);
  await assert.rejects(modelFromFiles([fileLike('model.json', '{oops')]), /not valid JSON/);
});

test('an .onnx model is one file: found among the chosen files, refused with others or twice or empty', async () => {
  assert.equal(isOnnxName('unet.ONNX'), true);
  assert.equal(isOnnxName('http://x/m/unet.onnx?v=2#top'), true);
  assert.equal(isOnnxName('model.json'), false);
  assert.equal(isOnnxName('http://x/unet.onnx/model.json'), false);
  assert.equal(
    await onnxFromFiles([fileLike('model.json', '{}'), fileLike('weights.bin', new Uint8Array(4))]),
    null,
    'TF.js files are not ONNX',
  );
  const got = await onnxFromFiles([fileLike('unet.onnx', new Uint8Array([8, 7, 1]))]);
  assert.equal(got?.name, 'unet.onnx');
  assert.deepEqual([...(got?.bytes ?? [])], [8, 7, 1]);
  const file = (e: unknown, pattern: RegExp) => e instanceof SegGradCamError && e.code === 'file' && pattern.test(e.message);
  await assert.rejects(onnxFromFiles([fileLike('a.onnx', 'x'), fileLike('b.onnx', 'y')]), (e) =>
    file(e, /choose one \.onnx model, not 2 \(a\.onnx, b\.onnx\)/),
  );
  await assert.rejects(onnxFromFiles([fileLike('a.onnx', 'x'), fileLike('a.onnx.data', 'y')]), (e) =>
    file(e, /choose a\.onnx alone.*external data.*a\.onnx\.data/),
  );
  await assert.rejects(onnxFromFiles([fileLike('a.onnx', new Uint8Array(0))]), /a\.onnx is empty/);
});

test('cosine similarity and the short list of layers for the grid', () => {
  const a = new Float32Array([1, 0, 2]);
  assert.ok(Math.abs(cosine(a, a) - 1) < 1e-7);
  assert.ok(Math.abs(cosine(a, new Float32Array([-1, 0, -2])) + 1) < 1e-7);
  assert.equal(cosine(a, new Float32Array(3)), 0);
  const row = (name: string, shape: number[], bottleneck = false): LayerRow => ({
    name,
    type: 'Conv2D',
    outputShape: [1, ...shape],
    bottleneck,
  });
  const layers = [
    row('a', [8, 8, 4]),
    row('b', [8, 8, 6]),
    row('se', [1, 1, 6]),
    row('c', [4, 4, 8], true),
    row('d', [4, 4, 8]),
    row('e', [8, 8, 4]),
  ];
  assert.deepEqual(
    resolutionChanges(layers).map((l) => l.name),
    ['b', 'c', 'd', 'e'],
  );
});

test('the static server serves files with their types, 404s, and stays inside its folders', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sgc-serve-'));
  const other = mkdtempSync(join(tmpdir(), 'sgc-mount-'));
  writeFileSync(join(root, 'index.html'), '<p>hi</p>');
  writeFileSync(join(root, 'x.wasm'), new Uint8Array([0, 97, 115, 109]));
  writeFileSync(join(other, 'm.json'), '{}');
  const srv = await serve({ root, mounts: { '/extra/': other } });
  try {
    const get = (p: string) => fetch(new URL(p, srv.url));
    let res = await get('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    res = await get('/x.wasm');
    assert.equal(res.headers.get('content-type'), 'application/wasm');
    res = await get('/extra/m.json');
    assert.equal(await res.text(), '{}');
    assert.equal((await get('/nope.js')).status, 404);
    assert.equal((await get('/%2e%2e/%2e%2e/etc/passwd')).status === 200, false);
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  } finally {
    await srv.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

test('the catalog lists the bundled models whose files exist, with their samples', () => {
  const { files, catalog } = collectBundled(process.cwd());
  const selfie = catalog.models.find((m) => m.id === 'selfie');
  assert.ok(selfie, 'the selfie model is bundled');
  assert.equal(selfie.url, 'models/selfie/selfie.json');
  assert.equal(selfie.labels, 'models/selfie/labels.txt');
  assert.ok(selfie.samples.length > 0);
  for (const url of [selfie.url, selfie.labels, ...selfie.samples, 'models/selfie/selfie.bin']) assert.ok(files.has(url), url);
  assert.equal(selfie.format, 'tfjs');
  // The PyTorch-exported U-Net is offered as an ONNX model: one file, with sample photos.
  const onnx = catalog.models.find((m) => m.id === 'unet-small-onnx');
  assert.ok(onnx, 'the ONNX U-Net is bundled');
  assert.equal(onnx.format, 'onnx');
  assert.equal(onnx.url, 'fixtures/onnx/unet-small.onnx');
  assert.ok(onnx.samples.length > 0);
  for (const url of [onnx.url, ...onnx.samples]) assert.ok(files.has(url), url);
  // Only the weights the manifest lists are copied (no optimizer state, no checkpoints).
  assert.ok([...files.keys()].every((k) => !/checkpoint|optimizer/.test(k)));
});
