/**
 * The bulk reader of weights (src/engine/onnx/load.ts tensorValues: a float16 table, typed views of
 * int8/uint8/float32 raw data) gives exactly the values of the per-element reader (readTensor):
 * every one of the 65,536 float16 bit patterns (NaN, infinities, subnormals, -0 included), and raw
 * data that starts at an odd byte offset inside a larger buffer (as protobuf decoding leaves it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tensorValues } from '../src/engine/onnx/load.js';
import { DataType, type TensorProto } from '../src/engine/onnx/proto.js';
import { readTensor } from '../src/engine/onnx/tensor.js';

/** `bytes` placed at byte offset 1 of a larger buffer. */
function oddlyPlaced(bytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(bytes.byteLength + 3);
  buf.set(bytes, 1);
  return buf.subarray(1, 1 + bytes.byteLength);
}

function same(t: TensorProto) {
  const want = Array.from(readTensor(t).data);
  const got = Array.from(tensorValues(t).data);
  assert.equal(got.length, want.length);
  const differ = want.findIndex((v, i) => !Object.is(v, got[i]));
  assert.equal(differ, -1, `element ${differ}: ${got[differ]} vs ${want[differ]}`);
  assert.deepEqual(tensorValues(t).dims, readTensor(t).dims);
}

test('float16: all 65,536 bit patterns, raw data at an odd offset', () => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  same({ name: 'h', dims: [256, 256], dataType: DataType.FLOAT16, rawData: oddlyPlaced(new Uint8Array(bits.buffer)) });
});

test('float32, int8 and uint8 raw data at an odd offset; float_data and int32_data encodings', () => {
  const f = Float32Array.of(1.5, -0, NaN, Infinity, 3.4e38, 1e-45, -7);
  same({ name: 'f', dims: [7], dataType: DataType.FLOAT, rawData: oddlyPlaced(new Uint8Array(f.buffer)) });
  const b = Uint8Array.of(0, 1, 127, 128, 200, 255);
  same({ name: 'i8', dims: [2, 3], dataType: DataType.INT8, rawData: oddlyPlaced(b) });
  same({ name: 'u8', dims: [2, 3], dataType: DataType.UINT8, rawData: oddlyPlaced(b) });
  same({ name: 'ff', dims: [3], dataType: DataType.FLOAT, floatData: [1, -2.5, 0.1] });
  same({ name: 'ii', dims: [3], dataType: DataType.INT8, int32Data: [-128, 0, 127] });
  same({ name: 'hh', dims: [2], dataType: DataType.FLOAT16, int32Data: [0x3c00, 0xfc00] });
});
