/**
 * Every registered method × engine (LayersModel, GraphModel, ONNX) × region form (pixel, box, class region, whole
 * image) on one small segmentation net with the same weights on the three engines: each combination gives the
 * LayersModel's map within 1e-4 (the reference: the other engine on the same weights) or a typed SegGradCamError
 * refusal — no crash, no other error type. A refusal must be the same on every engine unless the engine lacks the
 * capability the method names.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Explainer, type Explanation } from '../src/explain.js';
import { SegGradCamError } from '../src/errors.js';
import { methodNames, type MethodOptions } from '../src/methods/index.js';
import { box, classRegion, pixel, whole, type Region } from '../src/region/region.js';
import { classifierTriple, segmentationTriple, type Triple } from './helpers/engine-triple.js';
import { maxAbs, maxAbsDiff, randomImage, useCpu } from './helpers/setup.js';

const OPTIONS: MethodOptions = { steps: 2, samples: 8, iterations: 2, maxChannels: 4, window: 4, stride: 4, batchSize: 4 };
const IMAGE = randomImage(8, 8, 4);
const REGIONS: Array<[string, Region]> = [
  ['pixel', pixel(3, 4)],
  ['box', box(1, 1, 6, 5)],
  ['class', classRegion()],
  ['whole', whole()],
];

let triple: Triple;
let explainers: Array<[string, Explainer]>;
let classifier: Array<[string, Explainer]>;
/** The class predicted on most pixels (so that the class region is not empty). */
let classId = 0;
before(async () => {
  await useCpu();
  triple = await segmentationTriple(8, 3, 2);
  explainers = [
    ['layers-model', new Explainer(triple.layers)],
    ['graph-model', new Explainer(triple.graph)],
    ['onnx', new Explainer(triple.onnx)],
  ];
  const c = await classifierTriple(8, 3, 5);
  classifier = [
    ['layers-model', new Explainer(c.layers)],
    ['graph-model', new Explainer(c.graph)],
    ['onnx', new Explainer(c.onnx)],
  ];
  const { labels } = await explainers[0][1].predict(IMAGE);
  const counts = [0, 0, 0];
  for (const l of labels) counts[l]++;
  classId = counts.indexOf(Math.max(...counts));
});
after(() => {
  for (const [, e] of [...(explainers ?? []), ...(classifier ?? [])]) e.dispose();
});

type Outcome = { ok: Explanation } | { refused: SegGradCamError };

async function outcome(e: Explainer, method: string, region: Region, layer: string, cls: number): Promise<Outcome> {
  try {
    return { ok: await e.explain(IMAGE, { region, classId: cls, layer, method, methodOptions: OPTIONS }) };
  } catch (err) {
    assert.ok(err instanceof SegGradCamError, `${method}: not a typed refusal: ${(err as Error)?.stack ?? String(err)}`);
    return { refused: err };
  }
}

for (const method of methodNames()) {
  test(`${method} on every engine and region form: segmentation net`, () => matrix(method, explainers, REGIONS, 'c2', classId));
  test(`${method} on every engine: classifier (GAP + dense head)`, () =>
    matrix(
      method,
      classifier,
      [
        ['whole', whole()],
        ['pixel', pixel(3, 4)],
      ],
      'features',
      2,
    ));
}

async function matrix(method: string, engines: Array<[string, Explainer]>, regions: Array<[string, Region]>, layer: string, cls: number) {
  {
    const rows: string[] = [];
    let largest = 0;
    let ran = false;
    for (const [form, region] of regions) {
      const [ref, ...others] = await Promise.all(
        engines.map(async ([kind, e]): Promise<[string, Outcome]> => [kind, await outcome(e, method, region, layer, cls)]),
      );
      for (const [kind, o] of others) {
        const label = `${method}, ${form}, ${kind} vs ${ref[0]}`;
        if ('ok' in ref[1] && 'ok' in o) {
          const [a, b] = [ref[1].ok, o.ok];
          assert.deepEqual([b.camWidth, b.camHeight], [a.camWidth, a.camHeight], `${label}: map size`);
          const scale = maxAbs(a.cam);
          const d = maxAbsDiff(a.cam, b.cam);
          assert.ok(d <= 1e-4 * scale + 1e-7, `${label}: raw maps differ by ${d} (scale ${scale})`);
          assert.ok(maxAbsDiff(a.heatmap, b.heatmap) <= 1e-4, `${label}: heatmaps differ by ${maxAbsDiff(a.heatmap, b.heatmap)}`);
          rows.push(`${form}/${kind}: equal (${d.toExponential(1)}, max ${maxAbs(a.cam).toExponential(1)})`);
          largest = Math.max(largest, maxAbs(a.cam));
          ran = true;
        } else if ('refused' in o) {
          rows.push(`${form}/${kind}: refused (${o.refused.message.slice(0, 80)})`);
          if ('refused' in ref[1]) continue;
          // Only a missing engine capability may separate the engines.
          assert.match(
            o.refused.message,
            /not supported|does not offer|needs/,
            `${label}: refused where the reference ran: ${o.refused.message}`,
          );
        } else {
          assert.fail(`${label}: the reference refused (${(ref[1] as { refused: Error }).refused.message}) but ${kind} ran`);
        }
      }
    }
    console.log(`${method}: ${rows.join('; ')}`);
    // A comparison of all-zero maps would prove nothing.
    if (ran) assert.ok(largest > 1e-4, `${method}: every map is zero`);
  }
}
