import { SegGradCamError } from '../errors.js';

/** The set M of output pixels whose class score is explained. Coordinates are in the original image's pixels: x right, y down. */
export type Region =
  | { kind: 'pixel'; x: number; y: number }
  | { kind: 'pixels'; points: Array<[number, number]> }
  /** Inclusive corners. */
  | { kind: 'box'; x0: number; y0: number; x1: number; y1: number }
  /** A binary mask the size of the image (non-zero = in M). */
  | { kind: 'mask'; width: number; height: number; mask: Uint8Array }
  /** All pixels predicted as the target class. */
  | { kind: 'class' }
  /** The connected component of the prediction that contains (x, y): one object. */
  | { kind: 'object'; x: number; y: number }
  | { kind: 'whole' };

export const pixel = (x: number, y: number): Region => ({ kind: 'pixel', x, y });
export const pixels = (points: Array<[number, number]>): Region => ({ kind: 'pixels', points });
export const box = (x0: number, y0: number, x1: number, y1: number): Region => ({ kind: 'box', x0, y0, x1, y1 });
export const mask = (width: number, height: number, m: Uint8Array): Region => ({ kind: 'mask', width, height, mask: m });
export const classRegion = (): Region => ({ kind: 'class' });
export const object = (x: number, y: number): Region => ({ kind: 'object', x, y });
export const whole = (): Region => ({ kind: 'whole' });

export interface RegionContext {
  imageWidth: number;
  imageHeight: number;
  /** The prediction at output resolution (class per pixel). */
  labels: Int32Array;
  outWidth: number;
  outHeight: number;
  /** The class explained (needed by the 'class' form). */
  classIndex: number;
  /** Its name, when known: messages name the class by it. */
  className?: string;
}

/** A pixel of the original image mapped to the output cell that contains it. */
export function toOutputCell(
  x: number,
  y: number,
  ctx: Pick<RegionContext, 'imageWidth' | 'imageHeight' | 'outWidth' | 'outHeight'>,
): [number, number] {
  const ox = Math.min(ctx.outWidth - 1, Math.floor(((x + 0.5) * ctx.outWidth) / ctx.imageWidth));
  const oy = Math.min(ctx.outHeight - 1, Math.floor(((y + 0.5) * ctx.outHeight) / ctx.imageHeight));
  return [ox, oy];
}

export function checkPixel(x: number, y: number, width: number, height: number, what = 'pixel'): void {
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= width || y >= height) {
    throw new SegGradCamError(
      `${what} (${x}, ${y}) is outside the ${width}x${height} image (x in 0..${width - 1}, y in 0..${height - 1})`,
      'pixel',
    );
  }
}

/**
 * M as a 0/1 mask over the output grid (outHeight × outWidth, row-major). A cell belongs to M
 * when its centre falls on a region pixel or a region pixel falls in it, so regions smaller
 * than a cell are never lost and larger ones leave no holes. An empty M is an error.
 */
export function regionToMask(region: Region, ctx: RegionContext): Uint8Array {
  const { outWidth: ow, outHeight: oh } = ctx;
  const out = new Uint8Array(ow * oh);
  switch (region.kind) {
    case 'whole':
      out.fill(1);
      break;
    case 'class':
      for (let i = 0; i < out.length; i++) out[i] = ctx.labels[i] === ctx.classIndex ? 1 : 0;
      if (!out.includes(1)) {
        throw new SegGradCamError(
          `empty region: no pixel is predicted as ${ctx.className !== undefined ? `'${ctx.className}' (class ${ctx.classIndex})` : `class ${ctx.classIndex}`}`,
          'region',
        );
      }
      return out;
    case 'object': {
      checkPixel(region.x, region.y, ctx.imageWidth, ctx.imageHeight);
      const [ox, oy] = toOutputCell(region.x, region.y, ctx);
      return connectedComponent(ctx.labels, ow, oh, ox, oy);
    }
    default: {
      if (region.kind === 'box' && ow <= ctx.imageWidth && oh <= ctx.imageHeight) {
        // Output no finer than the image: a cell whose centre pixel is in the box also contains
        // it, so the cells are those containing a box pixel — a rectangle (one cell per step).
        checkBox(region, ctx.imageWidth, ctx.imageHeight);
        const [ox0, oy0] = toOutputCell(region.x0, region.y0, ctx);
        const [ox1, oy1] = toOutputCell(region.x1, region.y1, ctx);
        for (let oy = oy0; oy <= oy1; oy++) out.fill(1, oy * ow + ox0, oy * ow + ox1 + 1);
        return out;
      }
      const inRegion = imagePredicate(region, ctx);
      // Cells whose centres fall on the region.
      for (let oy = 0; oy < oh; oy++) {
        const y = Math.floor(((oy + 0.5) * ctx.imageHeight) / oh);
        for (let ox = 0; ox < ow; ox++) {
          const x = Math.floor(((ox + 0.5) * ctx.imageWidth) / ow);
          if (inRegion.test(x, y)) out[oy * ow + ox] = 1;
        }
      }
      // Cells that contain a region pixel.
      inRegion.each((x, y) => {
        const [ox, oy] = toOutputCell(x, y, ctx);
        out[oy * ow + ox] = 1;
      });
    }
  }
  if (!out.includes(1)) throw new SegGradCamError(`empty region: the ${region.kind} selects no pixel`, 'region');
  return out;
}

interface ImagePredicate {
  test(x: number, y: number): boolean;
  each(visit: (x: number, y: number) => void): void;
}

/** A box's corners inside the image and in order. */
function checkBox({ x0, y0, x1, y1 }: { x0: number; y0: number; x1: number; y1: number }, W: number, H: number): void {
  checkPixel(x0, y0, W, H, 'box corner');
  checkPixel(x1, y1, W, H, 'box corner');
  if (x1 < x0 || y1 < y0) throw new SegGradCamError(`box ${x0},${y0},${x1},${y1} is empty: expected x0 <= x1 and y0 <= y1`, 'region');
}

function imagePredicate(region: Region, ctx: RegionContext): ImagePredicate {
  const W = ctx.imageWidth;
  const H = ctx.imageHeight;
  switch (region.kind) {
    case 'pixel':
      checkPixel(region.x, region.y, W, H);
      return { test: (x, y) => x === region.x && y === region.y, each: (v) => v(region.x, region.y) };
    case 'pixels': {
      if (region.points.length === 0) throw new SegGradCamError('empty region: the pixel list is empty', 'region');
      const set = new Set<number>();
      for (const [x, y] of region.points) {
        checkPixel(x, y, W, H);
        set.add(y * W + x);
      }
      return { test: (x, y) => set.has(y * W + x), each: (v) => set.forEach((i) => v(i % W, Math.floor(i / W))) };
    }
    case 'box': {
      const { x0, y0, x1, y1 } = region;
      checkBox(region, W, H);
      return {
        test: (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1,
        each: (v) => {
          for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) v(x, y);
        },
      };
    }
    case 'mask': {
      if (region.width !== W || region.height !== H) {
        throw new SegGradCamError(`mask is ${region.width}x${region.height} but the image is ${W}x${H}`, 'shape');
      }
      const m = region.mask;
      if (!m.some((v) => v !== 0)) throw new SegGradCamError('empty region: the mask has no pixel set', 'region');
      return {
        test: (x, y) => m[y * W + x] !== 0,
        each: (v) => {
          for (let i = 0; i < m.length; i++) if (m[i] !== 0) v(i % W, Math.floor(i / W));
        },
      };
    }
    default:
      throw new Error(`internal: no image predicate for ${region.kind}`);
  }
}

/** The 4-connected component of equal labels that contains (x, y). */
export function connectedComponent(labels: Int32Array, width: number, height: number, x: number, y: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const cls = labels[y * width + x];
  const stack = [y * width + x];
  out[y * width + x] = 1;
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const cx = i % width;
    const cy = (i - cx) / width;
    const visit = (j: number) => {
      if (!out[j] && labels[j] === cls) {
        out[j] = 1;
        stack.push(j);
      }
    };
    if (cx > 0) visit(i - 1);
    if (cx < width - 1) visit(i + 1);
    if (cy > 0) visit(i - width);
    if (cy < height - 1) visit(i + width);
  }
  return out;
}
