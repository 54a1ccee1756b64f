/**
 * What the ONNX engine copies out of ONNX Runtime (docs/onnx.md, "Memory at 1024x1024"): the
 * load probe returns a few numbers per tensor, not the tensors; a pass past the cacheBytes budget
 * keeps the logits and the layer, not what the backward part reads, and a second region on it
 * still gets the same gradient (the forward + backward graph runs again).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { InferenceSession } from 'onnxruntime-common';
import { Explainer } from '../src/explain.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { DEFAULT_SESSION_OPTIONS, type OnnxAdapterOptions, type OrtRuntime } from '../src/engine/onnx/options.js';
import { isEarlyOutput } from '../src/engine/onnx/early.js';
import { decodeModel, encodeModel } from '../src/engine/onnx/proto.js';
import { regionObjective } from '../src/region/objective.js';
import { classRegion, pixel } from '../src/region/region.js';
import { readImageFile } from '../src/io/files.js';
import { uniform } from '../scripts/onnx/reference.js';
import { buildUnet } from '../scripts/onnx/unet.js';
import { maxAbsDiff, useCpu } from './helpers/setup.js';
import { profilingRuntime, replay, type ProfiledRun } from './helpers/ort-profile.js';
import { GRADIENT } from '../src/engine/onnx/gradient.js';

before(useCpu);

/** nodeRuntime, recording per session run the number of elements it returned, and each session's graph outputs. */
function recordingRuntime() {
  const runs: number[] = [];
  const outputs: string[][] = [];
  const ort: OrtRuntime = {
    name: 'recording',
    Tensor: nodeRuntime.Tensor,
    InferenceSession: {
      async create(model: Uint8Array, options?: InferenceSession.SessionOptions) {
        outputs.push(decodeModel(model).graph.output.map((o) => o.name));
        const s = await nodeRuntime.InferenceSession.create(model, options);
        const run = s.run.bind(s) as (feeds: InferenceSession.FeedsType) => Promise<InferenceSession.ReturnType>;
        return Object.assign(Object.create(s) as InferenceSession, {
          run: async (feeds: InferenceSession.FeedsType) => {
            const res = await run(feeds);
            // The early leaves (one element each, src/engine/onnx/early.ts) are not what a pass keeps.
            runs.push(Object.entries(res).reduce((n, [name, t]) => (isEarlyOutput(name) ? n : n + t.size), 0));
            return res;
          },
          release: () => s.release(),
        });
      },
    },
  };
  return { ort, runs, outputs };
}

test('the load probe returns at most 65 elements and a shape per tensor, not the tensors', async () => {
  const unet = buildUnet();
  const nodeOutputs = unet.model.graph.node.reduce((n, node) => n + node.output.length, 0);
  const { ort, runs, outputs } = recordingRuntime();
  const ad = await OnnxModelAdapter.create(encodeModel(unet.model), ort, { shapes: 'probe' });
  try {
    assert.equal(runs.length, 1, 'one probe run at load');
    // Each tensor: its shape (rank 4 at most) and its first 65 elements.
    assert.ok(runs[0] <= nodeOutputs * (4 + 65), `the probe returned ${runs[0]} elements for ${nodeOutputs} tensors`);
    assert.ok(
      outputs[0].every((o) => o.startsWith('sgc/probe/')),
      'no model tensor is a probe output',
    );
    // The probe still read every tensor's shape: the layers and their shapes are listed.
    const bottleneck = new Explainer(ad).bottleneck;
    const layer = ad.layers().find((l) => l.name === bottleneck);
    // levels 4: four 2x poolings, base · 2^4 channels.
    assert.deepEqual(layer?.outputShape, [1, unet.spec.height / 16, unet.spec.width / 16, unet.spec.base * 16]);
  } finally {
    ad.dispose();
  }
});

test('past cacheBytes a primed pass keeps only the logits and the layer; a second region gets the same gradient', async () => {
  const unet = buildUnet();
  const bytes = encodeModel(unet.model);
  const kept = await OnnxModelAdapter.create(bytes, nodeRuntime, { windowMaxArea: 0 });
  const rec = recordingRuntime();
  const lean = await OnnxModelAdapter.create(bytes, rec.ort, { windowMaxArea: 0, cacheBytes: 0 });
  const { height: H, width: W, channels: C } = kept.input;
  const x = tf.tensor4d(uniform(H * W * C, 7, 0, 1), [1, H, W, C]);
  const objective = (x0: number, y0: number, cls: number) => {
    const { height, width } = kept.output;
    const mask = new Uint8Array(height * width);
    for (let y = y0; y < y0 + 8; y++) for (let xx = x0; xx < x0 + 16; xx++) mask[y * width + xx] = 1;
    return regionObjective(kept.output, cls, mask, 'logits');
  };
  const first = objective(4, 4, 2);
  const second = objective(40, 20, 5);
  const layer = new Explainer(kept).bottleneck;
  try {
    const [pk, pl] = [await kept.forward(x, { layer, objective: first }), await lean.forward(x, { layer, objective: first })];
    // The primed run returned the logits, A and ∂S/∂A, nothing the backward part reads.
    const a = kept.layers().find((l) => l.name === layer)?.outputShape as number[];
    const aSize = a.reduce((p, q) => p * q, 1);
    const logits = kept.output.height * kept.output.width * kept.output.channels;
    assert.equal(rec.runs.at(-1), logits + 2 * aSize, 'the primed run returns the logits, A and ∂S/∂A only');
    for (const o of [first, second]) {
      const gk = await pk.gradient(layer, o);
      const gl = await pl.gradient(layer, o);
      assert.ok(maxAbsDiff(await gl.gradients.data(), await gk.gradients.data()) <= 1e-5 * Math.max(1, Math.abs(gk.score)));
      assert.ok(maxAbsDiff(await gl.activations.data(), await gk.activations.data()) === 0);
      assert.equal(gl.score, gk.score);
      tf.dispose([gk.activations, gk.gradients, gl.activations, gl.gradients]);
    }
    pk.dispose();
    pl.dispose();
  } finally {
    x.dispose();
    kept.dispose();
    lean.dispose();
  }
});

test('the load probe frees each activation after its last reader, as a plain run does (ONNX Runtime profile replayed)', async () => {
  // The zoo's nested U-Net: skips and side outputs keep tensors alive across stages.
  const bytes = new Uint8Array(await readFile(new URL('../fixtures/zoo/u2net-like/model.onnx', import.meta.url)));
  const prof = profilingRuntime();
  try {
    const ad = await OnnxModelAdapter.create(bytes, prof.ort, { shapes: 'probe' });
    ad.dispose();
    assert.equal(prof.runs.length, 1, 'one probe run at load');
    const probe = prof.runs[0];
    // The plain model, run the way the probe runs it (no graph optimisations) on the same input size.
    const plain = await prof.ort.InferenceSession.create(bytes, { ...DEFAULT_SESSION_OPTIONS, graphOptimizationLevel: 'disabled' });
    const dims = ad.inputDims;
    const size = dims.reduce((a, b) => a * b, 1);
    await plain.run({ [ad.inputName]: new nodeRuntime.Tensor('float32', new Float32Array(size), dims) });
    await plain.release();
    const [p, q] = [replay(probe, size * 4), replay(prof.runs[1], size * 4)];
    // Before the fix the probes ran after the whole model: every activation alive at the end (5.5x the plain run here).
    assert.ok(p.peak <= 1.1 * q.peak, `probe peak ${p.peak} B (after ${p.at}) vs plain run ${q.peak} B (after ${q.at})`);
  } finally {
    prof.cleanup();
  }
});

test("a fused run keeps ReLU masks, not ReLU outputs, for its backward part: its peak stays near a plain run's (ONNX Runtime profile replayed)", async () => {
  // The zoo's nested U-Net at its 64x64 size; past cacheBytes (0 here) nothing saved is returned, and no windows.
  const dir = new URL('../fixtures/zoo/u2net-like/', import.meta.url);
  const bytes = new Uint8Array(await readFile(new URL('model.onnx', dir)));
  const image = await readImageFile(new URL('input.png', dir).pathname);
  for (const region of [classRegion(), pixel(20, 30)]) {
    const prof = profilingRuntime();
    try {
      const ad = await OnnxModelAdapter.create(bytes, prof.ort, { cacheBytes: 0, windowMaxArea: 0 });
      const ex = new Explainer(ad);
      await ex.explain(image, { region, classId: 1 });
      ex.dispose();
      const plain = await prof.ort.InferenceSession.create(bytes, DEFAULT_SESSION_OPTIONS);
      const dims = ad.inputDims;
      const size = dims.reduce((a, b) => a * b, 1);
      await plain.run({ [ad.inputName]: new nodeRuntime.Tensor('float32', new Float32Array(size), dims) });
      await plain.release();
      // The adapter's sessions were released (asynchronously) before the plain one: their profiles come first.
      const fusedRuns = prof.runs.filter((r) => r.kernels.length > 0 && r.graph.graph.output.some((o) => o.name === GRADIENT));
      assert.equal(fusedRuns.length, 1, 'one fused run');
      const [fused, base] = [replay(fusedRuns[0], size * 4), replay(prof.runs.at(-1) as ProfiledRun, size * 4)];
      // Without the early masks (src/engine/onnx/early.ts) every float ReLU output waited for the backward part: 1.56x here.
      assert.ok(fused.peak <= 1.3 * base.peak, `${region.kind}: fused peak ${fused.peak} B (after ${fused.at}) vs plain ${base.peak} B`);
    } finally {
      prof.cleanup();
    }
  }
});

test('past cacheBytes the lean forward pass runs without an arena (it would keep its peak through the fused run), the fused and primed sessions keep theirs (speed); within it, and when the caller sets it, as before', async () => {
  const bytes = encodeModel(buildUnet().model);
  const created: Array<{ outputs: string[]; arena: boolean | undefined }> = [];
  const ort: OrtRuntime = {
    name: 'options',
    Tensor: nodeRuntime.Tensor,
    InferenceSession: {
      create(model: Uint8Array, options?: InferenceSession.SessionOptions) {
        created.push({ outputs: decodeModel(model).graph.output.map((o) => o.name), arena: options?.enableCpuMemArena });
        return nodeRuntime.InferenceSession.create(model, options);
      },
    },
  };
  const arenas = async (options: OnnxAdapterOptions) => {
    created.length = 0;
    const ad = await OnnxModelAdapter.create(bytes, ort, { windowMaxArea: 0, ...options });
    const atLoad = created.length;
    const { height: H, width: W, channels: C } = ad.input;
    const x = tf.tensor4d(uniform(H * W * C, 3, 0, 1), [1, H, W, C]);
    const layer = new Explainer(ad).bottleneck;
    const mask = new Uint8Array(ad.output.height * ad.output.width).fill(1);
    const objective = regionObjective(ad.output, 1, mask, 'logits');
    try {
      // A class region: the lean forward pass, then the fused graph; then a primed run.
      const pass = await ad.forward(x, { layer });
      const g = await pass.gradient(layer, objective);
      tf.dispose([g.activations, g.gradients]);
      pass.dispose();
      (await ad.forward(x, { layer, objective })).dispose();
    } finally {
      x.dispose();
      ad.dispose();
    }
    // The sessions of the load (shape inference) are released before any run.
    return created.slice(atLoad).map((c) => c.arena);
  };
  assert.deepEqual(
    await arenas({ cacheBytes: 0 }),
    [false, undefined, undefined],
    'lean forward: no arena; fused, primed: the default arena',
  );
  assert.deepEqual(await arenas({}), [undefined, undefined, undefined], 'within cacheBytes: ONNX Runtime default (arena)');
  assert.deepEqual(await arenas({ cacheBytes: 0, sessionOptions: { enableCpuMemArena: true } }), [true, true, true], "the caller's choice");
});
