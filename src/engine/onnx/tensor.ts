import { SegGradCamError } from '../../errors.js';
import { DataType, type TensorProto } from './proto.js';

/** Values of a constant tensor: floats as Float32Array/Float64Array, integers as plain numbers. */
export interface ConstValue {
  dims: number[];
  dataType: number;
  /** Float types as float arrays; integer and bool types as number[] (int64 beyond 2^53 rounds). */
  data: Float32Array | Float64Array | number[];
}

/** Element size and little-endian reader of raw_data, per readable data type. */
const RAW: Record<number, { size: number; get: (dv: DataView, offset: number) => number }> = {
  [DataType.FLOAT]: { size: 4, get: (dv, o) => dv.getFloat32(o, true) },
  [DataType.DOUBLE]: { size: 8, get: (dv, o) => dv.getFloat64(o, true) },
  [DataType.FLOAT16]: { size: 2, get: (dv, o) => halfToFloat(dv.getUint16(o, true)) },
  [DataType.INT64]: { size: 8, get: (dv, o) => Number(dv.getBigInt64(o, true)) },
  [DataType.UINT64]: { size: 8, get: (dv, o) => Number(dv.getBigUint64(o, true)) },
  [DataType.INT32]: { size: 4, get: (dv, o) => dv.getInt32(o, true) },
  [DataType.UINT32]: { size: 4, get: (dv, o) => dv.getUint32(o, true) },
  [DataType.INT16]: { size: 2, get: (dv, o) => dv.getInt16(o, true) },
  [DataType.UINT16]: { size: 2, get: (dv, o) => dv.getUint16(o, true) },
  [DataType.INT8]: { size: 1, get: (dv, o) => dv.getInt8(o) },
  [DataType.UINT8]: { size: 1, get: (dv, o) => dv.getUint8(o) },
  [DataType.BOOL]: { size: 1, get: (dv, o) => dv.getUint8(o) },
};

/** Reads a TensorProto (raw_data or the typed fields). External data is refused with a clear error. */
export function readTensor(t: TensorProto): ConstValue {
  const dims = (t.dims ?? []).map(Number);
  const dataType = t.dataType ?? DataType.FLOAT;
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === 1) {
    throw new SegGradCamError(
      `tensor '${t.name ?? ''}' keeps its data in an external file, which is not supported: re-export the model in one file`,
      'model',
    );
  }
  const reader = RAW[dataType];
  if (!reader) throw new SegGradCamError(`tensor '${t.name ?? ''}' has data type ${dataType}, which cannot be read here`, 'model');
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  if (raw) {
    const data =
      dataType === DataType.DOUBLE ? new Float64Array(count) : isFloatType(dataType) ? new Float32Array(count) : new Array<number>(count);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) data[i] = reader.get(dv, i * reader.size);
    return { dims, dataType, data };
  }
  switch (dataType) {
    case DataType.FLOAT:
      return { dims, dataType, data: Float32Array.from(t.floatData ?? []) };
    case DataType.DOUBLE:
      return { dims, dataType, data: Float64Array.from(t.doubleData ?? []) };
    case DataType.FLOAT16: {
      // Halves travel as the low 16 bits of int32_data.
      const src = t.int32Data ?? [];
      return { dims, dataType, data: Float32Array.from({ length: count }, (_, i) => halfToFloat(src[i])) };
    }
    case DataType.INT64:
      return { dims, dataType, data: t.int64Data?.map(Number) ?? [] };
    case DataType.UINT64:
      return { dims, dataType, data: t.uint64Data?.map(Number) ?? [] };
    default:
      return { dims, dataType, data: (t.int32Data ?? []).map(Number) };
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** A float32 TensorProto (raw little-endian data). */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  const data = Float32Array.from(values);
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** An int64 TensorProto (raw little-endian data). */
export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(Math.trunc(Math.max(Math.min(values[i], 9.2e18), -9.2e18)));
  return { name, dims: [...dims], dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

export const isFloatType = (t: number | undefined) => t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16;
