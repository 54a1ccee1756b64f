/**
 * The 3-D fixtures' PyTorch references (fixtures/volume/, scripts/volume/export.py): the JSON
 * index and the float32 tensors of its .bin, and the relative error the volume tests use.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export const VOLUME_DIR = new URL('../../fixtures/volume/', import.meta.url);

export interface VolumeReference {
  class: number;
  regions: { voxel: { voxel: [number, number, number] }; box: { box: [number, number, number, number, number, number] } };
  scores: Record<string, number>;
  layers: Array<{ role: string; onnx: string; shape: number[] }>;
  tensors: Record<string, { offset: number; shape: number[] }>;
}

/** A reference by its base name ('reference', 'nnunet3d'): its JSON and a reader of its tensors. */
export function volumeReference(name: string): { ref: VolumeReference; tensor: (key: string) => Float32Array } {
  const ref = JSON.parse(readFileSync(new URL(`${name}.json`, VOLUME_DIR), 'utf8')) as VolumeReference;
  const bin = readFileSync(new URL(`${name}.bin`, VOLUME_DIR));
  const tensor = (key: string): Float32Array => {
    const t = ref.tensors[key];
    const n = t.shape.reduce((a, b) => a * b, 1);
    return new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + 4 * n));
  };
  return { ref, tensor };
}

/** Largest |a − b| over the largest |b| (arrays of equal length). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}
