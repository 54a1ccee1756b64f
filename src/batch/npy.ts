/**
 * NumPy's .npy format (version 1.0) for float32 arrays: the magic "\x93NUMPY", version 1.0, a
 * little-endian uint16 header length, then a Python dict literal padded with spaces and ending in
 * '\n' so that magic + length + header is a multiple of 64 bytes, then the raw little-endian data
 * in C order (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 */
import { SegGradCamError } from '../errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** A float32 array of the given shape (C order) as .npy bytes. */
export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`npy: shape [${shape.join(', ')}] holds ${count} values, got ${data.length}`);
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(MAGIC.length + 4 + header.length + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const body = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) body.setFloat32(i * 4, data[i], true);
  return out;
}

/** Reads a .npy file written by encodeNpyFloat32 (float32, C order, version 1.x). */
export function decodeNpyFloat32(bytes: Uint8Array): { data: Float32Array; shape: number[] } {
  const bad = (why: string) => new SegGradCamError(`not a float32 .npy file: ${why}`, 'file');
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('no NUMPY magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint16(8, true);
  const header = String.fromCharCode(...bytes.subarray(10, 10 + headerLength));
  if (!/'descr':\s*'<f4'/.test(header) || !/'fortran_order':\s*False/.test(header)) throw bad(`header ${header.trim()}`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) throw bad('no shape');
  const shape = m[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 10 + headerLength;
  if (bytes.length - start !== count * 4) throw bad(`${bytes.length - start} data bytes for shape (${shape.join(', ')})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(start + i * 4, true);
  return { data, shape };
}
