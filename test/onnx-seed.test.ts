/**
 * The class region found inside the graph (src/engine/onnx/seed.ts): explaining the pixels
 * predicted as class c, class given, on a new image takes one ONNX Runtime run (the forward
 * part, the region and the gradient together) where it took two (a forward run to find the
 * region, then a backward or fused run), and gives what the same region gives when it
 * is handed over as a mask (a fed cotangent, the path the PyTorch references check): α, the CAM
 * and S. A single sigmoid channel (the zoo's nested U-Net: class 1 is y > 0, class 0 is −y) and
 * a multi-class model (the nnU-Net-style net: argmax) are both covered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Explainer } from '../src/explain.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { seedMatches } from '../src/engine/onnx/seed.js';
import { readImageFile } from '../src/io/files.js';
import { box, classRegion, mask, pixel, type Region } from '../src/region/region.js';
import { countingRuntime } from './helpers/counting-runtime.js';
import { relativeError } from './helpers/zoo.js';

const MODELS = [
  { name: 'nested U-Net, one sigmoid channel', dir: 'u2net-like' },
  { name: 'nnU-Net-style, argmax over classes', dir: 'nnunet-like' },
];

/** A zoo model's file, its input image, and an Explainer on it (the reference: plain onnxruntime-node). */
async function zooCase(name: string) {
  const dir = new URL(`../fixtures/zoo/${name}/`, import.meta.url);
  const bytes = readFileSync(new URL('model.onnx', dir));
  const image = await readImageFile(new URL('input.png', dir).pathname);
  return { bytes, image, reference: new Explainer(await OnnxModelAdapter.create(bytes, nodeRuntime)) };
}

describe('the class region found in the graph: one run, and what the same region as a mask gives', () => {
  for (const m of MODELS) {
    test(m.name, { timeout: 120_000 }, async () => {
      const { bytes, image, reference } = await zooCase(m.dir);
      const { labels, width, height } = await reference.predict(image);
      // The image is the model's input size and the output is the input's: a mask of the image is one of the output grid.
      assert.deepEqual([width, height], [image.width, image.height]);
      const classes = [...new Set(labels)].sort();
      assert.ok(classes.length >= 2, `classes predicted: ${classes.join(', ')}`);
      try {
        for (const classId of classes) {
          const inM = Uint8Array.from(labels, (l) => (l === classId ? 1 : 0));
          for (const layer of ['bottleneck', reference.layers().at(-3)?.name as string]) {
            const c = countingRuntime();
            const seeded = new Explainer(await OnnxModelAdapter.create(bytes, c.ort));
            const before = c.runs.length;
            try {
              const got = await seeded.explain(image, { region: classRegion(), classId, layer });
              assert.equal(c.runs.length - before, 1, `class ${classId} at ${layer}: one ONNX Runtime run`);
              const want = await reference.explain(image, { region: mask(width, height, inM), classId, layer });
              assert.deepEqual(got.regionMask, want.regionMask);
              assert.equal(got.layer.name, want.layer.name);
              assert.ok(
                Math.abs(got.scoreValue - want.scoreValue) <= 1e-9 * Math.abs(want.scoreValue),
                `S ${got.scoreValue} vs ${want.scoreValue}`,
              );
              const ra = relativeError(got.weights as Float32Array, want.weights as Float32Array);
              const rc = relativeError(got.cam, want.cam);
              assert.ok(ra <= 1e-5, `class ${classId} at ${layer}: α differs by ${ra}`);
              assert.ok(rc <= 1e-5, `class ${classId} at ${layer}: CAM differs by ${rc}`);
            } finally {
              seeded.dispose();
            }
          }
        }
        // A class nobody is predicted as: the same typed error as before.
        const n = reference.adapter.output.channels === 1 ? 2 : reference.adapter.output.channels;
        const absent = Array.from({ length: n }, (_, i) => i).find((i) => !classes.includes(i));
        if (absent !== undefined) {
          const fresh = new Explainer(await OnnxModelAdapter.create(bytes, nodeRuntime));
          await assert.rejects(fresh.explain(image, { region: classRegion(), classId: absent }), /empty region/);
          fresh.dispose();
        }
      } finally {
        reference.dispose();
      }
    });
  }
});

describe('the class of a region found in the graph: one run, and the answer of a cached prediction', () => {
  for (const m of MODELS) {
    test(m.name, { timeout: 120_000 }, async () => {
      const { bytes, image, reference } = await zooCase(m.dir);
      const { labels, width } = await reference.predict(image);
      // A pixel of each predicted class, and a box across classes.
      const regions: Region[] = [...new Set(labels)].sort().map((k) => {
        const i = labels.indexOf(k);
        return pixel(i % width, Math.floor(i / width));
      });
      regions.push(box(8, 8, 40, 30));
      const classes = new Set<number>();
      try {
        for (const region of regions) {
          // Windows wherever the model has a window plan (the nested U-Net), and the whole map.
          for (const windowMaxArea of [1, 0]) {
            const c = countingRuntime();
            const seeded = new Explainer(await OnnxModelAdapter.create(bytes, c.ort, { windowMaxArea }));
            const before = c.runs.length;
            try {
              const got = await seeded.explain(image, { region, layer: 'bottleneck' });
              const runs = c.runs.slice(before);
              const what = `${JSON.stringify(region)}, windowMaxArea ${windowMaxArea}`;
              assert.equal(runs.length, 1, `${what}: one ONNX Runtime run`);
              if (windowMaxArea === 0) assert.ok(!runs[0].feeds.some((f) => f.startsWith('sgc/window_')), `${what}: whole map`);
              const want = await reference.explain(image, { region, layer: 'bottleneck' });
              classes.add(want.classIndex);
              assert.equal(got.classIndex, want.classIndex, `${what}: the class`);
              assert.deepEqual(got.regionMask, want.regionMask);
              assert.ok(Math.abs(got.scoreValue - want.scoreValue) <= 1e-9 * Math.abs(want.scoreValue), `${what}: S`);
              const ra = relativeError(got.weights as Float32Array, want.weights as Float32Array);
              const rc = relativeError(got.cam, want.cam);
              assert.ok(ra <= 1e-5, `${what}: α differs by ${ra}`);
              assert.ok(rc <= 1e-5, `${what}: CAM differs by ${rc}`);
            } finally {
              seeded.dispose();
            }
          }
        }
        assert.ok(classes.size >= 2, 'regions of two classes at least');
        if (m.dir === 'u2net-like') {
          // The nested U-Net has a window plan: a pixel ran on a window.
          const c = countingRuntime();
          const seeded = new Explainer(await OnnxModelAdapter.create(bytes, c.ort, { windowMaxArea: 1 }));
          await seeded.explain(image, { region: regions[0], layer: 'bottleneck' });
          assert.ok(c.runs.at(-1)?.feeds.includes('sgc/seed_region'), 'the region is fed');
          assert.ok(
            c.runs.at(-1)?.feeds.some((f) => f.startsWith('sgc/window_')),
            'on a window',
          );
          seeded.dispose();
        }
      } finally {
        reference.dispose();
      }
    });
  }
});

describe('seedMatches: the graph’s region is used only when it is the objective’s, weight for weight', () => {
  const objective = (weights: number[]) => ({ weights: Float32Array.from(weights), on: 'logits' as const, offset: 0 });
  test('three classes, class 2', () => {
    const maskBytes = Uint8Array.of(1, 0);
    assert.equal(seedMatches(objective([0, 0, 1, 0, 0, 0]), maskBytes, 2, 3), true);
    assert.equal(seedMatches(objective([0, 0, 1, 0, 0, 1]), maskBytes, 2, 3), false, 'a pixel the graph left out');
    assert.equal(seedMatches(objective([0, 1, 1, 0, 0, 0]), maskBytes, 2, 3), false, 'another channel');
    assert.equal(seedMatches({ ...objective([0, 0, 1, 0, 0, 0]), on: 'probability' }, maskBytes, 2, 3), false, 'probabilities');
  });
  test('one sigmoid channel: class 1 is +y, class 0 is −y', () => {
    assert.equal(seedMatches(objective([1, 0, 1]), Uint8Array.of(1, 0, 1), 1, 1), true);
    assert.equal(seedMatches(objective([-1, 0, -1]), Uint8Array.of(1, 0, 1), 0, 1), true);
    assert.equal(seedMatches(objective([1, 0, 1]), Uint8Array.of(1, 0, 1), 0, 1), false);
    assert.equal(seedMatches({ ...objective([-1, 0, -1]), offset: 2 }, Uint8Array.of(1, 0, 1), 0, 1), false, 'an offset');
  });
});
