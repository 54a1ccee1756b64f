/**
 * The committed model zoo (fixtures/zoo/, scripts/zoo/README.md): the PyTorch references and
 * Seg-Grad-CAM's α and CAM taken from an ONNX adapter's layer gradient, the way the references
 * define them (α_k = mean over the grid of ∂S/∂A^k, CAM = ReLU(Σ_k α_k A^k), S = Σ_M y^c).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { Objective } from '../../src/engine/contract.js';
import { OnnxModelAdapter } from '../../src/engine/onnx/adapter.js';
import { nchwToNhwc } from '../../src/engine/onnx/layout.js';
import { nodeRuntime } from '../../src/engine/onnx/node.js';

export const ZOO = 'fixtures/zoo';

export interface ZooReference {
  dir: string;
  json: {
    class: number;
    binary: boolean;
    regions: { pixel: { cells: number[][] }; box: { cellBox: number[] } };
    layers: Array<{ role: string; onnx: string; shape: number[] }>;
    tensors: Record<string, { offset: number; shape: number[] }>;
  };
  get(name: string): Float32Array;
}

export function zooReference(model: string): ZooReference {
  const dir = `${ZOO}/${model}`;
  const json = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as ZooReference['json'];
  const bin = readFileSync(`${dir}/reference.bin`);
  const get = (name: string) => {
    const t = json.tensors[name];
    if (!t) throw new Error(`no tensor '${name}' in ${dir}/reference.json`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    return new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + 4 * n));
  };
  return { dir, json, get };
}

export const openZoo = (model: string, file: string): Promise<OnnxModelAdapter> =>
  OnnxModelAdapter.create(readFileSync(`${ZOO}/${model}/${file}`), nodeRuntime);

/** The reference input, NHWC. */
export function zooInput(ref: ZooReference): tf.Tensor4D {
  const [, c, h, w] = ref.json.tensors.input.shape;
  return tf.tensor4d(nchwToNhwc(ref.get('input'), 1, c, h, w), [1, h, w, c]);
}

/** S = Σ_M y^c over the logits for one of the reference regions. */
export function zooObjective(ad: OnnxModelAdapter, ref: ZooReference, region: 'pixel' | 'box'): Objective {
  const [, k, h, w] = ad.analysis.shape(ad.logitsName);
  const weights = new Float32Array(h * w * k);
  const channel = k === 1 ? 0 : ref.json.class;
  const cells: number[][] = [];
  if (region === 'pixel') cells.push(...ref.json.regions.pixel.cells);
  else {
    // x0, y0, x1, y1 with the corners included.
    const [x0, y0, x1, y1] = ref.json.regions.box.cellBox;
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) cells.push([y, x]);
  }
  for (const [y, x] of cells) weights[(y * w + x) * k + channel] = 1;
  return { weights, on: 'logits', offset: 0 };
}

/** α and CAM at a layer, from the adapter's activations and gradient. */
export async function zooAlphaCam(
  ad: OnnxModelAdapter,
  ref: ZooReference,
  layer: string,
  region: 'pixel' | 'box',
): Promise<{ alpha: Float32Array; cam: Float32Array }> {
  const x = zooInput(ref);
  const pass = await ad.forward(x);
  try {
    const g = await pass.gradient(layer, zooObjective(ad, ref, region));
    const [, h, w, c] = g.activations.shape;
    const a = g.activations.dataSync();
    const d = g.gradients.dataSync();
    g.activations.dispose();
    g.gradients.dispose();
    const alpha = new Float32Array(c);
    for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) alpha[k] += d[i * c + k] / (h * w);
    const cam = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += alpha[k] * a[i * c + k];
      cam[i] = Math.max(0, s);
    }
    return { alpha, cam };
  } finally {
    pass.dispose();
    x.dispose();
  }
}

/** Largest |a − b| relative to the largest |b| (0 when both are zero). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Cosine similarity. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}
