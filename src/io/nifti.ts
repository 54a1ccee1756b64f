/**
 * NIfTI-1 and NIfTI-2 volumes (.nii, .nii.gz), read and written from the header specification
 * (nifti1.h, nifti2.h); browser-safe (gzip through the platform's DecompressionStream /
 * CompressionStream, present in Node ≥ 18 and every current browser).
 *
 * Data order: the voxel data as stored, i fastest, then j, then k — the C-order array
 * [nz, ny, nx], which is the project's [D, H, W] volume layout (see docs/volumes.md). Values are
 * scaled by scl_slope/scl_inter when the slope is non-zero, and returned as float32.
 *
 * The affine (voxel (i, j, k) → world, millimetres) is chosen as nibabel and ITK do: the sform
 * when sform_code > 0, else the qform when qform_code > 0, else the spacing alone (the
 * specification's "method 1": diag(pixdim1, pixdim2, pixdim3)).
 */
import { SegGradCamError } from '../errors.js';

export type Affine = [number[], number[], number[], number[]];

/** The qform as stored (quaternion b, c, d; offsets; qfac = pixdim[0] sign). */
export interface Qform {
  code: number;
  b: number;
  c: number;
  d: number;
  offset: [number, number, number];
  qfac: number;
}

export interface NiftiVolume {
  /** [nx, ny, nz]: the sizes of i, j, k. */
  dims: [number, number, number];
  /** Scaled voxel values, [nz, ny, nx] in C order (i fastest). */
  data: Float32Array;
  /** Voxel (i, j, k, 1) → world (x, y, z, 1). */
  affine: Affine;
  affineSource: 'sform' | 'qform' | 'spacing';
  /** pixdim[1..3] (mm). */
  spacing: [number, number, number];
  sformCode: number;
  /** The sform rows (as stored; meaningful when sformCode > 0). */
  sform: Affine;
  qform: Qform;
  version: 1 | 2;
  /** The NIfTI datatype code of the stored data (2 uint8, 4 int16, 16 float32, …). */
  datatype: number;
  /** Volumes in the file (dim[4] for a 4-D file); `data` holds the one asked for. */
  frames: number;
  /** xyzt_units as stored. */
  xyztUnits: number;
}

const GZIP = (b: Uint8Array) => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;

async function through(bytes: Uint8Array, stream: TransformStream<Uint8Array, Uint8Array>): Promise<Uint8Array> {
  const out = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

export const gunzip = (bytes: Uint8Array) => through(bytes, new DecompressionStream('gzip') as TransformStream<Uint8Array, Uint8Array>);
export const gzip = (bytes: Uint8Array) => through(bytes, new CompressionStream('gzip') as TransformStream<Uint8Array, Uint8Array>);

const bad = (why: string) => new SegGradCamError(`not a readable NIfTI file: ${why}`, 'file');

/** Bytes per voxel and reader of each supported datatype. */
const TYPES: Record<number, { size: number; name: string; get: (v: DataView, o: number, le: boolean) => number }> = {
  2: { size: 1, name: 'uint8', get: (v, o) => v.getUint8(o) },
  4: { size: 2, name: 'int16', get: (v, o, le) => v.getInt16(o, le) },
  8: { size: 4, name: 'int32', get: (v, o, le) => v.getInt32(o, le) },
  16: { size: 4, name: 'float32', get: (v, o, le) => v.getFloat32(o, le) },
  64: { size: 8, name: 'float64', get: (v, o, le) => v.getFloat64(o, le) },
  256: { size: 1, name: 'int8', get: (v, o) => v.getInt8(o) },
  512: { size: 2, name: 'uint16', get: (v, o, le) => v.getUint16(o, le) },
  768: { size: 4, name: 'uint32', get: (v, o, le) => v.getUint32(o, le) },
};

/** The rotation of a qform quaternion, columns scaled by the spacing (qfac flips k), and its offset. */
export function qformAffine(q: Qform, spacing: [number, number, number]): Affine {
  const { b, c, d } = q;
  const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const r = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  const s = [spacing[0], spacing[1], (q.qfac < 0 ? -1 : 1) * spacing[2]];
  return [
    [r[0][0] * s[0], r[0][1] * s[1], r[0][2] * s[2], q.offset[0]],
    [r[1][0] * s[0], r[1][1] * s[1], r[1][2] * s[2], q.offset[1]],
    [r[2][0] * s[0], r[2][1] * s[1], r[2][2] * s[2], q.offset[2]],
    [0, 0, 0, 1],
  ];
}

/** Reads a .nii or .nii.gz file's bytes (NIfTI-1 or NIfTI-2, either byte order). */
export async function decodeNifti(input: Uint8Array, options: { frame?: number } = {}): Promise<NiftiVolume> {
  const bytes = GZIP(input) ? await gunzip(input) : input;
  if (bytes.length < 348) throw bad(`${bytes.length} bytes is shorter than a header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  let size = v.getInt32(0, true);
  if (size !== 348 && size !== 540) {
    le = false;
    size = v.getInt32(0, false);
  }
  if (size !== 348 && size !== 540) throw bad('sizeof_hdr is neither 348 (NIfTI-1) nor 540 (NIfTI-2)');
  const version: 1 | 2 = size === 348 ? 1 : 2;
  const magic = String.fromCharCode(...bytes.subarray(version === 1 ? 344 : 4, version === 1 ? 347 : 7));
  if (magic !== (version === 1 ? 'n+1' : 'n+2')) {
    if (version === 1 && magic === 'ni1') throw bad('a two-file NIfTI (.hdr/.img) is not supported: convert it to .nii');
    throw bad(`magic '${magic}'`);
  }
  const i16 = (o: number) => v.getInt16(o, le);
  const i32 = (o: number) => v.getInt32(o, le);
  const f32 = (o: number) => v.getFloat32(o, le);
  const f64 = (o: number) => v.getFloat64(o, le);
  const i64 = (o: number) => Number(v.getBigInt64(o, le));
  const h =
    version === 1
      ? {
          dim: Array.from({ length: 8 }, (_, k) => i16(40 + 2 * k)),
          datatype: i16(70),
          pixdim: Array.from({ length: 8 }, (_, k) => f32(76 + 4 * k)),
          voxOffset: f32(108),
          slope: f32(112),
          inter: f32(116),
          xyztUnits: v.getUint8(123),
          qformCode: i16(252),
          sformCode: i16(254),
          quat: [256, 260, 264, 268, 272, 276].map(f32),
          srow: Array.from({ length: 12 }, (_, k) => f32(280 + 4 * k)),
        }
      : {
          dim: Array.from({ length: 8 }, (_, k) => i64(16 + 8 * k)),
          datatype: i16(12),
          pixdim: Array.from({ length: 8 }, (_, k) => f64(104 + 8 * k)),
          voxOffset: i64(168),
          slope: f64(176),
          inter: f64(184),
          xyztUnits: i32(500),
          qformCode: i32(344),
          sformCode: i32(348),
          quat: [352, 360, 368, 376, 384, 392].map(f64),
          srow: Array.from({ length: 12 }, (_, k) => f64(400 + 8 * k)),
        };
  const ndim = h.dim[0];
  if (ndim < 1 || ndim > 7) throw bad(`dim[0] = ${ndim}`);
  const dimOf = (k: number) => (k <= ndim ? Math.max(h.dim[k], 1) : 1);
  if (ndim > 4 && [5, 6, 7].some((k) => dimOf(k) > 1)) throw bad(`a ${ndim}-D dataset (only 3-D volumes and 4-D series are read)`);
  const dims: [number, number, number] = [dimOf(1), dimOf(2), dimOf(3)];
  const frames = dimOf(4);
  const frame = options.frame ?? 0;
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames)
    throw new SegGradCamError(`frame ${frame} does not exist: the file holds ${frames} volume(s)`, 'usage');
  const type = TYPES[h.datatype];
  if (!type) throw bad(`datatype ${h.datatype} is not supported (uint8, int8, int16, uint16, int32, uint32, float32, float64)`);
  const n = dims[0] * dims[1] * dims[2];
  const start = Math.floor(h.voxOffset) + frame * n * type.size;
  if (h.voxOffset < size || start + n * type.size > bytes.length)
    throw bad(
      `the data (${n * frames} voxels of ${type.name} from byte ${h.voxOffset}) runs past the end of the file (${bytes.length} bytes)`,
    );
  const data = new Float32Array(n);
  const scaled = Number.isFinite(h.slope) && h.slope !== 0;
  const slope = scaled ? h.slope : 1;
  const inter = scaled && Number.isFinite(h.inter) ? h.inter : 0;
  for (let k = 0; k < n; k++) data[k] = type.get(v, start + k * type.size, le) * slope + inter;

  const spacing: [number, number, number] = [h.pixdim[1], h.pixdim[2], h.pixdim[3]].map((p) => (p > 0 ? p : 1)) as [number, number, number];
  const qform: Qform = {
    code: h.qformCode,
    b: h.quat[0],
    c: h.quat[1],
    d: h.quat[2],
    offset: [h.quat[3], h.quat[4], h.quat[5]],
    qfac: h.pixdim[0] < 0 ? -1 : 1,
  };
  const sform: Affine = [h.srow.slice(0, 4), h.srow.slice(4, 8), h.srow.slice(8, 12), [0, 0, 0, 1]];
  let affine: Affine;
  let affineSource: NiftiVolume['affineSource'];
  if (h.sformCode > 0) {
    affine = sform.map((r) => [...r]) as Affine;
    affineSource = 'sform';
  } else if (h.qformCode > 0) {
    affine = qformAffine(qform, spacing);
    affineSource = 'qform';
  } else {
    affine = [
      [spacing[0], 0, 0, 0],
      [0, spacing[1], 0, 0],
      [0, 0, spacing[2], 0],
      [0, 0, 0, 1],
    ];
    affineSource = 'spacing';
  }
  return {
    dims,
    data,
    affine,
    affineSource,
    spacing,
    sformCode: h.sformCode,
    sform,
    qform,
    version,
    datatype: h.datatype,
    frames,
    xyztUnits: h.xyztUnits,
  };
}

/** What a written volume takes from its source: the geometry (affine, sform/qform, spacing, units). */
export type NiftiGeometry = Pick<NiftiVolume, 'affine' | 'spacing' | 'sformCode' | 'qform' | 'xyztUnits'>;

/**
 * A float32 NIfTI-1 single file (.nii; gzip it for .nii.gz) of `data` ([nz, ny, nx], C order)
 * with a source's geometry: the sform is the source's affine (sform_code: the source's, or 2,
 * "aligned", when it had none), the qform and spacing are copied as stored — so the volume opens
 * aligned with its source in 3D Slicer, ITK-SNAP, niivue and nibabel.
 */
export function encodeNifti1(data: Float32Array, dims: [number, number, number], geometry: NiftiGeometry, description = ''): Uint8Array {
  const n = dims[0] * dims[1] * dims[2];
  if (data.length !== n) throw new SegGradCamError(`${data.length} values do not fill a ${dims.join('x')} volume`, 'shape');
  const voxOffset = 352;
  const bytes = new Uint8Array(voxOffset + 4 * n);
  const v = new DataView(bytes.buffer);
  v.setInt32(0, 348, true);
  v.setUint8(38, 'r'.charCodeAt(0)); // regular
  const dim = [3, dims[0], dims[1], dims[2], 1, 1, 1, 1];
  dim.forEach((d, k) => v.setInt16(40 + 2 * k, d, true));
  v.setInt16(70, 16, true); // float32
  v.setInt16(72, 32, true);
  const pixdim = [geometry.qform.qfac < 0 ? -1 : 1, ...geometry.spacing, 1, 1, 1, 1];
  pixdim.forEach((p, k) => v.setFloat32(76 + 4 * k, p, true));
  v.setFloat32(108, voxOffset, true);
  v.setFloat32(112, 1, true); // scl_slope 1, scl_inter 0: the values as given
  v.setFloat32(116, 0, true);
  v.setUint8(123, geometry.xyztUnits || 2); // mm
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of data) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (Number.isFinite(lo) && Number.isFinite(hi)) {
    v.setFloat32(124, hi, true); // cal_max, cal_min: the display range
    v.setFloat32(128, lo, true);
  }
  const desc = new TextEncoder().encode(description).subarray(0, 79);
  bytes.set(desc, 148);
  const q = geometry.qform;
  v.setInt16(252, q.code, true);
  v.setInt16(254, geometry.sformCode > 0 ? geometry.sformCode : 2, true);
  [q.b, q.c, q.d, ...q.offset].forEach((x, k) => v.setFloat32(256 + 4 * k, x, true));
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat32(280 + 16 * r + 4 * c, geometry.affine[r][c], true);
  bytes.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  // Bytes 348..351: no extension.
  for (let k = 0; k < n; k++) v.setFloat32(voxOffset + 4 * k, data[k], true);
  return bytes;
}
