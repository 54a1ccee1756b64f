/**
 * Why S is so large on the 1024² zoo U-Net (docs/onnx.md, "Memory at 1024x1024"):
 *
 *   node --import tsx bench/onnx-1024-scale.ts
 *
 * Runs the zoo's nested U-Net at its own 64x64 and the same weights exported at 1024x1024
 * (fixtures/zoo/generated/u2net-like-1024) in ONNX Runtime, on the same pattern scaled to each
 * size, and prints the largest |value| of every stage output and of the logits. The weights are
 * random with BatchNorm statistics measured at 64x64 (scripts/zoo/models.py, init_weights).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel, type ModelProto } from '../src/engine/onnx/proto.js';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const STAGES = ['1', '2', '3', '4', '5', '6', '5d', '4d', '3d', '2d', '1d'].map((s) => `/stage${s}/Add_output_0`);

async function maxima(path: string, size: number) {
  const bytes = await readFile(path);
  // The logits: the input of the final Sigmoid.
  const s = await ort.InferenceSession.create(withOutputs(new Uint8Array(bytes)), { graphOptimizationLevel: 'all' });
  const x = new Float32Array(3 * size * size);
  // A smooth pattern in [0, 1] defined on the unit square, so both sizes see the same picture.
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let xx = 0; xx < size; xx++)
        x[(c * size + y) * size + xx] = 0.5 + 0.5 * Math.sin((6 * (xx + 0.5)) / size + (4 * (y + 0.5)) / size + c);
  const res = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, size, size]) });
  const out: Record<string, number> = {};
  for (const [k, t] of Object.entries(res)) {
    let m = 0;
    let sum = 0;
    let positive = 0;
    for (const v of t.data as Float32Array) {
      m = Math.max(m, Math.abs(v));
      sum += v;
      if (v > 0) positive++;
    }
    out[k] = m;
    if (k === LOGITS) Object.assign(out, { 'logits mean': sum / t.size, 'logits > 0 (pixels)': positive });
  }
  await s.release();
  return out;
}

const LOGITS = '/outconv/Conv_output_0';

/** The model with the stage outputs and the logits as its outputs (protobuf edited by the ONNX engine's codec). */
function withOutputs(bytes: Uint8Array): Uint8Array {
  return encodeModel({ ...decoded(bytes), graph: { ...decoded(bytes).graph, output: [...STAGES, LOGITS].map((name) => ({ name })) } });
}

const cache = new Map<Uint8Array, ModelProto>();
function decoded(bytes: Uint8Array): ModelProto {
  let m = cache.get(bytes);
  if (!m) cache.set(bytes, (m = decodeModel(bytes)));
  return m;
}

const small = await maxima(at('../fixtures/zoo/u2net-like/model.onnx'), 64);
const big = await maxima(at('../fixtures/zoo/generated/u2net-like-1024/model.onnx'), 1024);
console.log('| tensor | 64x64 max abs | 1024x1024 max abs |');
console.log('| --- | --- | --- |');
for (const k of Object.keys(small)) console.log(`| ${k} | ${small[k].toPrecision(3)} | ${big[k].toPrecision(3)} |`);
