/**
 * Regions of a volume: the set M of output voxels whose class score S = Σ_M y^c is explained.
 * Coordinates are (d, h, w) voxel indices of the volume the model reads ([D, H, W], the NIfTI
 * data order k, j, i — see docs/volumes.md); when the logits grid is smaller, a voxel maps to the
 * output cell that contains its centre, as pixels do in 2-D.
 */
import { SegGradCamError } from '../errors.js';

export type Voxel = [number, number, number];
/** [D, H, W] or [d, h, w]. */
export type Dims3 = [number, number, number];

export type VolumeRegion =
  | { kind: 'voxel'; voxel: Voxel }
  | { kind: 'voxels'; voxels: Voxel[] }
  /** Inclusive corners: d0, h0, w0, d1, h1, w1. */
  | { kind: 'box'; box: [number, number, number, number, number, number] }
  /** A mask over the volume ([D, H, W], C order; non-zero = in M), e.g. read from a NIfTI label file. */
  | { kind: 'mask'; mask: ArrayLike<number> }
  /** Every voxel predicted as the target class. */
  | { kind: 'class' }
  /** The connected component of the prediction (the target class) that contains the voxel: one 3-D object. */
  | { kind: 'component'; voxel: Voxel; connectivity?: Connectivity }
  | { kind: 'whole' };

/**
 * 6: voxels sharing a face are neighbours; 26: sharing a face, an edge or a corner (every voxel
 * of the 3×3×3 cube around it). 26 is the default: it is what ITK/scipy call full connectivity
 * and keeps thin oblique structures (vessels) in one piece.
 */
export type Connectivity = 6 | 26;

export interface VolumeRegionContext {
  /** The volume the model reads, [D, H, W]. */
  inputDims: Dims3;
  /** The logits grid, [d, h, w]. */
  outputDims: Dims3;
  /** The prediction on the logits grid (class per voxel): needed by 'class' and 'component'. */
  labels?: Int32Array;
  /** The class explained (needed by 'class' and 'component'). */
  classIndex?: number;
}

const size = (d: Dims3) => d[0] * d[1] * d[2];

function checkVoxel(v: Voxel, dims: Dims3, what = 'voxel'): void {
  if (v.length !== 3 || v.some((x, i) => !Number.isInteger(x) || x < 0 || x >= dims[i]))
    throw new SegGradCamError(
      `${what} (${v.join(', ')}) is outside the ${dims.join('x')} volume (d, h, w in 0..${dims[0] - 1}, 0..${dims[1] - 1}, 0..${dims[2] - 1})`,
      'pixel',
    );
}

/** The output cell that contains an input voxel's centre. */
export function toOutputVoxel(v: Voxel, inputDims: Dims3, outputDims: Dims3): Voxel {
  return v.map((x, i) => Math.min(outputDims[i] - 1, Math.floor(((x + 0.5) * outputDims[i]) / inputDims[i]))) as Voxel;
}

function need(ctx: VolumeRegionContext, kind: string): { labels: Int32Array; classIndex: number } {
  if (!ctx.labels || ctx.classIndex == null) throw new SegGradCamError(`a '${kind}' region needs the prediction and the class`, 'region');
  return { labels: ctx.labels, classIndex: ctx.classIndex };
}

/** M as a 0/1 mask over the logits grid ([d, h, w], C order). An empty M is an error. */
export function volumeRegionMask(region: VolumeRegion, ctx: VolumeRegionContext): Float32Array {
  const { inputDims: ind, outputDims: od } = ctx;
  const [, oh, ow] = od;
  const m = new Float32Array(size(od));
  const at = (v: Voxel) => (v[0] * oh + v[1]) * ow + v[2];
  switch (region.kind) {
    case 'voxel':
      checkVoxel(region.voxel, ind);
      m[at(toOutputVoxel(region.voxel, ind, od))] = 1;
      break;
    case 'voxels':
      if (region.voxels.length === 0) throw new SegGradCamError('the voxel list is empty', 'region');
      for (const v of region.voxels) {
        checkVoxel(v, ind);
        m[at(toOutputVoxel(v, ind, od))] = 1;
      }
      break;
    case 'box': {
      const b = region.box;
      if (b.length !== 6) throw new SegGradCamError(`a box has 6 numbers (d0, h0, w0, d1, h1, w1), not ${b.length}`, 'region');
      const lo: Voxel = [b[0], b[1], b[2]];
      const hi: Voxel = [b[3], b[4], b[5]];
      checkVoxel(lo, ind, 'box corner');
      checkVoxel(hi, ind, 'box corner');
      if (lo.some((x, i) => x > hi[i])) throw new SegGradCamError(`box (${b.join(', ')}): a first corner is past the second`, 'region');
      // Every output cell the box's voxels fall in.
      const a = toOutputVoxel(lo, ind, od);
      const z = toOutputVoxel(hi, ind, od);
      for (let d = a[0]; d <= z[0]; d++) for (let h = a[1]; h <= z[1]; h++) m.fill(1, at([d, h, a[2]]), at([d, h, z[2]]) + 1);
      break;
    }
    case 'mask': {
      if (region.mask.length !== size(ind))
        throw new SegGradCamError(`the mask has ${region.mask.length} voxels, the volume ${ind.join('x')} = ${size(ind)}`, 'region');
      for (let d = 0; d < ind[0]; d++)
        for (let h = 0; h < ind[1]; h++)
          for (let w = 0; w < ind[2]; w++)
            if (region.mask[(d * ind[1] + h) * ind[2] + w] !== 0) m[at(toOutputVoxel([d, h, w], ind, od))] = 1;
      break;
    }
    case 'class': {
      const { labels, classIndex } = need(ctx, 'class');
      for (let i = 0; i < m.length; i++) if (labels[i] === classIndex) m[i] = 1;
      break;
    }
    case 'component': {
      const { labels, classIndex } = need(ctx, 'component');
      checkVoxel(region.voxel, ind);
      const seed = toOutputVoxel(region.voxel, ind, od);
      if (labels[at(seed)] !== classIndex)
        throw new SegGradCamError(`voxel (${region.voxel.join(', ')}) is not predicted as class ${classIndex}: no object there`, 'region');
      const comp = connectedComponent3d(labels, od, seed, region.connectivity ?? 26);
      for (let i = 0; i < m.length; i++) m[i] = comp[i];
      break;
    }
    case 'whole':
      m.fill(1);
      break;
  }
  // A voxel, a voxel list (checked non-empty) or a box (checked ordered) marks at least one cell: no scan of the volume.
  const cannotBeEmpty = region.kind === 'voxel' || region.kind === 'voxels' || region.kind === 'box';
  if (!cannotBeEmpty && !m.some((v) => v !== 0)) throw new SegGradCamError(`the ${region.kind} region is empty`, 'region');
  return m;
}

/** Neighbour offsets of a connectivity. */
function offsets(connectivity: Connectivity): Voxel[] {
  if (connectivity !== 6 && connectivity !== 26)
    throw new SegGradCamError(`connectivity is 6 or 26, not ${String(connectivity)}`, 'region');
  const out: Voxel[] = [];
  for (let a = -1; a <= 1; a++)
    for (let b = -1; b <= 1; b++)
      for (let c = -1; c <= 1; c++) {
        const n = Math.abs(a) + Math.abs(b) + Math.abs(c);
        if (n === 0 || (connectivity === 6 && n !== 1)) continue;
        out.push([a, b, c]);
      }
  return out;
}

/**
 * Breadth-first fill from `start`: every voxel reachable through neighbours `nb` for which `joins(j)`
 * holds is marked (`mark(j)`); `marked(j)` says a voxel was reached already. `queue` is scratch space.
 */
function fill3d(
  dims: Dims3,
  nb: Voxel[],
  start: number,
  queue: Int32Array,
  joins: (j: number) => boolean,
  marked: (j: number) => boolean,
  mark: (j: number) => void,
): void {
  const [D, H, W] = dims;
  let head = 0;
  let tail = 0;
  queue[tail++] = start;
  mark(start);
  while (head < tail) {
    const i = queue[head++];
    const d = Math.floor(i / (H * W));
    const h = Math.floor(i / W) % H;
    const w = i % W;
    for (const [a, b, c] of nb) {
      const dd = d + a;
      const hh = h + b;
      const ww = w + c;
      if (dd < 0 || hh < 0 || ww < 0 || dd >= D || hh >= H || ww >= W) continue;
      const j = (dd * H + hh) * W + ww;
      if (marked(j) || !joins(j)) continue;
      mark(j);
      queue[tail++] = j;
    }
  }
}

/** The component of equal labels that contains the seed voxel, as a 0/1 mask (breadth-first, iterative). */
export function connectedComponent3d(labels: ArrayLike<number>, dims: Dims3, seed: Voxel, connectivity: Connectivity = 26): Uint8Array {
  checkVoxel(seed, dims, 'seed voxel');
  const [D, H, W] = dims;
  const out = new Uint8Array(D * H * W);
  const start = (seed[0] * H + seed[1]) * W + seed[2];
  const value = labels[start];
  fill3d(
    dims,
    offsets(connectivity),
    start,
    new Int32Array(D * H * W),
    (j) => labels[j] === value,
    (j) => out[j] === 1,
    (j) => (out[j] = 1),
  );
  return out;
}

/**
 * Every connected component of the non-zero voxels of a mask: a label per voxel (0 = background,
 * 1..count in the order of their first voxel, C order) and the count. One breadth-first pass.
 */
export function labelComponents3d(
  mask: ArrayLike<number>,
  dims: Dims3,
  connectivity: Connectivity = 26,
): { labels: Int32Array; count: number } {
  const [D, H, W] = dims;
  if (mask.length !== D * H * W) throw new SegGradCamError(`the mask has ${mask.length} voxels, not ${D * H * W}`, 'region');
  const nb = offsets(connectivity);
  const labels = new Int32Array(mask.length);
  const queue = new Int32Array(mask.length);
  let count = 0;
  for (let s = 0; s < mask.length; s++) {
    if (mask[s] === 0 || labels[s]) continue;
    count++;
    fill3d(
      dims,
      nb,
      s,
      queue,
      (j) => mask[j] !== 0,
      (j) => labels[j] !== 0,
      (j) => (labels[j] = count),
    );
  }
  return { labels, count };
}
