import { SegGradCamError } from '../errors.js';
import { DataType, type TensorProto } from './proto.js';

/** Values of a constant tensor: floats as Float32Array/Float64Array, integers as plain numbers. */
export interface ConstValue {
  dims: number[];
  dataType: number;
  /** Float types as float arrays; integer and bool types as number[] (int64 beyond 2^53 rounds). */
  data: Float32Array | Float64Array | number[];
}

const view = (raw: Uint8Array) => new DataView(raw.buffer, raw.byteOffset, raw.byteLength);

/** Reads a TensorProto (raw_data or the typed fields). External data is refused with a clear error. */
export function readTensor(t: TensorProto): ConstValue {
  const dims = (t.dims ?? []).map(Number);
  const dataType = t.dataType ?? DataType.FLOAT;
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === 1) {
    throw new SegGradCamError(`tensor '${t.name ?? ''}' keeps its data in an external file, which is not supported: re-export the model in one file`, 'model');
  }
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  switch (dataType) {
    case DataType.FLOAT: {
      if (raw) {
        const out = new Float32Array(count);
        const dv = view(raw);
        for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
        return { dims, dataType, data: out };
      }
      return { dims, dataType, data: Float32Array.from(t.floatData ?? []) };
    }
    case DataType.DOUBLE: {
      if (raw) {
        const out = new Float64Array(count);
        const dv = view(raw);
        for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
        return { dims, dataType, data: out };
      }
      return { dims, dataType, data: Float64Array.from(t.doubleData ?? []) };
    }
    case DataType.FLOAT16: {
      const out = new Float32Array(count);
      if (raw) {
        const dv = view(raw);
        for (let i = 0; i < count; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      } else {
        const src = t.int32Data ?? [];
        for (let i = 0; i < count; i++) out[i] = halfToFloat(src[i]);
      }
      return { dims, dataType, data: out };
    }
    case DataType.INT64:
    case DataType.UINT64: {
      if (raw) {
        const dv = view(raw);
        const out: number[] = [];
        for (let i = 0; i < count; i++) out.push(Number(dataType === DataType.INT64 ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true)));
        return { dims, dataType, data: out };
      }
      return { dims, dataType, data: (dataType === DataType.INT64 ? t.int64Data : t.uint64Data)?.map(Number) ?? [] };
    }
    case DataType.INT32:
    case DataType.INT16:
    case DataType.INT8:
    case DataType.UINT16:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.UINT32: {
      if (raw) {
        const dv = view(raw);
        const out: number[] = [];
        const size = { [DataType.INT32]: 4, [DataType.UINT32]: 4, [DataType.INT16]: 2, [DataType.UINT16]: 2 }[dataType as number] ?? 1;
        for (let i = 0; i < count; i++) {
          const o = i * size;
          out.push(
            dataType === DataType.INT32
              ? dv.getInt32(o, true)
              : dataType === DataType.UINT32
                ? dv.getUint32(o, true)
                : dataType === DataType.INT16
                  ? dv.getInt16(o, true)
                  : dataType === DataType.UINT16
                    ? dv.getUint16(o, true)
                    : dataType === DataType.INT8
                      ? dv.getInt8(o)
                      : dv.getUint8(o),
          );
        }
        return { dims, dataType, data: out };
      }
      return { dims, dataType, data: (t.int32Data ?? []).map(Number) };
    }
    default:
      throw new SegGradCamError(`tensor '${t.name ?? ''}' has data type ${dataType}, which cannot be read here`, 'model');
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

/** Writes a ConstValue back as a TensorProto of its data type (float, double, int64, int32, bool). */
export function constToTensor(name: string, v: ConstValue): TensorProto {
  if (v.dataType === DataType.FLOAT) return floatTensor(name, v.dims, v.data);
  if (v.dataType === DataType.INT64) return int64Tensor(name, v.dims, v.data);
  if (v.dataType === DataType.DOUBLE) {
    const d = Float64Array.from(v.data);
    return { name, dims: [...v.dims], dataType: v.dataType, rawData: new Uint8Array(d.buffer) };
  }
  if (v.dataType === DataType.INT32) {
    const d = Int32Array.from(v.data);
    return { name, dims: [...v.dims], dataType: v.dataType, rawData: new Uint8Array(d.buffer) };
  }
  if (v.dataType === DataType.BOOL || v.dataType === DataType.UINT8 || v.dataType === DataType.INT8) {
    return { name, dims: [...v.dims], dataType: v.dataType, rawData: Uint8Array.from(v.data, (x) => x & 0xff) };
  }
  throw new SegGradCamError(`cannot write a constant of data type ${v.dataType}`, 'model');
}

export const isFloatType = (t: number) => t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16;
