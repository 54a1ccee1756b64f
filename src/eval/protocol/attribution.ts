/**
 * What the ROAD and sanity protocols (road.ts, sanity-checks.ts) take: tiles (an image, the
 * explained region M, an optional context mask and the class) and conditions (a method at a
 * layer, or any attribution function, e.g. a control that ignores the model), and the one way a
 * condition's map of a tile is computed: the raw map (CAM or input attribution, signed, not
 * normalised) resized bilinearly to the image.
 */
import { SegGradCamError } from '../../errors.js';
import type { Explainer } from '../../explain.js';
import type { RgbaImage } from '../../image.js';
import type { Method, MethodOptions } from '../../methods/index.js';
import { mask as maskRegion } from '../../region/region.js';
import { resizeMapBilinear } from '../../render/resize.js';

/** One tile of a protocol. Masks are width × height of the image (row-major, 1 = in). */
export interface ProtocolTile {
  /** A stable id (seeds the tile's random orders and noise). */
  id: number;
  image: RgbaImage;
  /** M, the explained region. */
  region: Uint8Array;
  /** The class explained over M. */
  classId: number;
  /** The context pixels the context variant of ROAD may remove (default: every pixel outside M). */
  context?: Uint8Array;
}

/** One explanation recipe of a protocol: a method at a layer, or an attribution function. */
export interface ProtocolCondition {
  /** A unique label (tables, figures and keys of the results). */
  label: string;
  /** A method name or object (default 'seg-grad-cam'); ignored with `attribute`. */
  method?: string | Method;
  /** A layer name, 'bottleneck' (default) or 'input'; ignored by input attributions. */
  layer?: string;
  methodOptions?: MethodOptions;
  /**
   * Instead of the explainer: the map of a tile for a class (width × height, signed). For controls
   * such as an edge detector of the image, which never looks at the model.
   */
  attribute?: (tile: ProtocolTile, classId: number, explainer: Explainer) => Float32Array | Promise<Float32Array>;
}

/** A condition's map of a tile: width × height of the image, signed, and whether it is all zeros. */
export interface AttributionMap {
  map: Float32Array;
  empty: boolean;
}

/** Throws a 'shape' error unless the tile's image and masks have the model's input size. */
export function checkTile(tile: ProtocolTile, width: number, height: number): void {
  const { image } = tile;
  if (image.width !== width || image.height !== height)
    throw new SegGradCamError(`tile ${tile.id}: the image is ${image.width}x${image.height}, the model takes ${width}x${height}`, 'shape');
  if (tile.region.length !== width * height)
    throw new SegGradCamError(`tile ${tile.id}: M has ${tile.region.length} pixels, not ${width * height}`, 'shape');
  if (tile.context && tile.context.length !== width * height)
    throw new SegGradCamError(`tile ${tile.id}: the context mask has ${tile.context.length} pixels, not ${width * height}`, 'shape');
  if (!tile.region.some((v) => v !== 0)) throw new SegGradCamError(`tile ${tile.id}: M is empty`, 'region');
}

/** Labels must be unique: they key the results. */
export function checkConditions(conditions: ProtocolCondition[]): void {
  if (conditions.length === 0) throw new SegGradCamError('no conditions to evaluate', 'usage');
  const seen = new Set<string>();
  for (const c of conditions) {
    if (seen.has(c.label)) throw new SegGradCamError(`two conditions share the label '${c.label}'`, 'usage');
    seen.add(c.label);
  }
}

/** The condition's map of the tile for class `classId` (default: the tile's class) over M. */
export async function attributionMap(
  explainer: Explainer,
  tile: ProtocolTile,
  condition: ProtocolCondition,
  classId: number = tile.classId,
): Promise<AttributionMap> {
  const { width, height } = tile.image;
  let map: Float32Array;
  if (condition.attribute) {
    map = Float32Array.from(await condition.attribute(tile, classId, explainer));
    if (map.length !== width * height)
      throw new SegGradCamError(`condition '${condition.label}' gave ${map.length} values for a ${width}x${height} tile`, 'shape');
  } else {
    const e = await explainer.explain(tile.image, {
      region: maskRegion(width, height, tile.region),
      classId,
      layer: condition.layer === 'input' ? undefined : condition.layer,
      method: condition.method ?? 'seg-grad-cam',
      ...(condition.methodOptions ? { methodOptions: condition.methodOptions } : {}),
    });
    map =
      e.camWidth === width && e.camHeight === height
        ? Float32Array.from(e.cam)
        : resizeMapBilinear(e.cam, e.camWidth, e.camHeight, width, height);
  }
  for (let i = 0; i < map.length; i++) if (!Number.isFinite(map[i])) map[i] = 0;
  return { map, empty: !map.some((v) => v !== 0) };
}
