/**
 * The zoo's float32 models against their PyTorch references (fixtures/zoo/<model>/reference.*,
 * written by scripts/zoo/export.py with torch.autograd): α and the CAM at the three reference
 * layers (encoder, bottleneck, decoder) for two regions (one pixel, a box). Equal to PyTorch's
 * float32 values within 1e-4 relative to the largest reference value, or within four times
 * PyTorch's own float32-vs-float64 difference there when that is larger (docs/zoo.md, "The
 * references"); and to PyTorch's float64 values within 1e-4 or twice that difference. SegFormer's encoder
 * layer is a token layer ([1, 144, 32]) explained as its 12x12 grid (src/engine/onnx/tokens.ts).
 * torchvision's models (fixtures/zoo/generated/, not committed) are checked when present.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { OnnxModelAdapter as Adapter } from '../src/engine/onnx/adapter.js';
import { nchwToNhwc } from '../src/engine/onnx/layout.js';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { useCpu } from './helpers/setup.js';

before(useCpu);

const ZOO = new URL('../fixtures/zoo/', import.meta.url);
const GENERATED = new URL('generated/', ZOO);

interface Reference {
  file: string;
  class: number;
  regions: { pixel: { cells: Array<[number, number]> }; box: { cellBox: [number, number, number, number] } };
  float32VsFloat64: { alpha: Record<string, Record<string, number>>; cam: Record<string, Record<string, number>> };
  layers: Array<{ role: string; onnx: string; shape: number[]; grid: [number, number] | null }>;
  tensors: Record<string, { offset: number; shape: number[] }>;
}

function loadReference(dir: URL) {
  const ref = JSON.parse(readFileSync(new URL('reference.json', dir), 'utf8')) as Reference;
  const bin = readFileSync(new URL('reference.bin', dir));
  const tensor = (key: string): Float32Array => {
    const t = ref.tensors[key];
    assert.ok(t, `reference tensor ${key}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    return new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + 4 * n));
  };
  return { ref, tensor };
}

/** max |a − b| / max |b|. */
function relative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? d : d / s;
}

/** Objective weights [h, w, K]: 1 at the region's cells of the reference class. */
function regionWeights(ref: Reference, region: 'pixel' | 'box', h: number, w: number, k: number): Float32Array {
  const out = new Float32Array(h * w * k);
  const cells: Array<[number, number]> = [];
  if (region === 'pixel') cells.push(...ref.regions.pixel.cells);
  else {
    const [x0, y0, x1, y1] = ref.regions.box.cellBox;
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) cells.push([y, x]);
  }
  for (const [y, x] of cells) out[(y * w + x) * k + ref.class] = 1;
  return out;
}

/** α (mean over the grid of ∂S/∂A per channel) and ReLU(Σ α_k A^k), from NHWC activations and gradients. */
function alphaAndCam(a: Float32Array, g: Float32Array, h: number, w: number, c: number) {
  const alpha = new Float64Array(c);
  for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) alpha[k] += g[p * c + k] / (h * w);
  const cam = new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += alpha[k] * a[p * c + k];
    cam[p] = Math.max(s, 0);
  }
  return { alpha, cam };
}

async function checkModel(dir: URL) {
  const { ref, tensor } = loadReference(dir);
  const ad = await Adapter.create(readFileSync(new URL(ref.file, dir)), nodeRuntime);
  const figures: string[] = [];
  try {
    const [, c, h, w] = ad.inputDims;
    const x = tf.tensor4d(nchwToNhwc(tensor('input'), 1, c, h, w), [1, h, w, c]);
    const pass = await ad.forward(x);
    x.dispose();
    try {
      const [, k, lh, lw] = ad.analysis.shape(ad.logitsName);
      for (const region of ['pixel', 'box'] as const) {
        const weights = regionWeights(ref, region, lh, lw, k);
        for (const layer of ref.layers) {
          const lg = await pass.gradient(layer.onnx, { weights, on: 'logits', offset: 0 });
          const [, gh, gw, gc] = lg.activations.shape;
          const { alpha, cam } = alphaAndCam(
            lg.activations.dataSync() as Float32Array,
            lg.gradients.dataSync() as Float32Array,
            gh,
            gw,
            gc,
          );
          tf.dispose([lg.activations, lg.gradients]);
          if (layer.grid) assert.deepEqual([gh, gw], layer.grid, `${layer.role}: the token layer's grid`);
          const key = `${layer.role}/${region}`;
          const ra = relative(alpha, tensor(`alpha/${key}`));
          const rc = relative(cam, tensor(`cam/${key}`));
          const ta = Math.max(1e-4, 4 * ref.float32VsFloat64.alpha[region][layer.role]);
          const tc = Math.max(1e-4, 4 * ref.float32VsFloat64.cam[region][layer.role]);
          const ra64 = relative(alpha, tensor(`alpha64/${key}`));
          figures.push(
            `${key}: α ${ra.toExponential(2)} (≤ ${ta.toExponential(1)}; vs float64 ${ra64.toExponential(2)}), CAM ${rc.toExponential(2)} (≤ ${tc.toExponential(1)})`,
          );
          // The float64 reference: within twice PyTorch's own float32 error there (or 1e-4).
          const rc64 = relative(cam, tensor(`cam64/${key}`));
          const fa = Math.max(1e-4, 2 * ref.float32VsFloat64.alpha[region][layer.role]);
          const fc = Math.max(1e-4, 2 * ref.float32VsFloat64.cam[region][layer.role]);
          assert.ok(ra64 <= fa, `${key}: α differs from PyTorch's float64 α by ${ra64} relative (tolerance ${fa})`);
          assert.ok(rc64 <= fc, `${key}: CAM differs from PyTorch's float64 CAM by ${rc64} relative (tolerance ${fc})`);
          assert.ok(ra <= ta, `${key}: α differs from PyTorch by ${ra} relative (tolerance ${ta})`);
          assert.ok(rc <= tc, `${key}: CAM differs from PyTorch by ${rc} relative (tolerance ${tc})`);
        }
      }
    } finally {
      pass.dispose();
    }
  } finally {
    ad.dispose();
  }
  return figures;
}

describe('zoo models vs PyTorch references (α and CAM at three layers, two regions)', () => {
  for (const name of ['nnunet-like', 'segformer-b0-like', 'u2net-like']) {
    test(name, async (t) => {
      const figures = await checkModel(new URL(`${name}/`, ZOO));
      t.diagnostic(figures.join('; '));
    });
  }
  for (const name of ['fcn-resnet50', 'deeplabv3-mobilenetv3', 'lraspp-mobilenetv3']) {
    const dir = new URL(`${name}/`, GENERATED);
    const skip = existsSync(new URL('reference.json', dir))
      ? false
      : 'fixtures/zoo/generated/ is missing: `/usr/bin/python3 scripts/zoo/export.py torchvision` writes it (scripts/zoo/README.md)';
    test(name, { skip }, async (t) => {
      const figures = await checkModel(dir);
      t.diagnostic(figures.join('; '));
    });
  }
});
