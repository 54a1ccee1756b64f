/**
 * What a batch run asks of every item: the cartesian product classes × region rule × layers ×
 * methods, expanded per item once its prediction (and ground truth) is known.
 */
import { SegGradCamError } from '../errors.js';
import type { ExplainRequest } from '../explain.js';
import type { MethodOptions } from '../methods/index.js';
import type { ScoreKind } from '../region/objective.js';
import { connectedComponent, mask as maskRegion, object as objectRegion, classRegion, whole, type Region } from '../region/region.js';

/**
 * class-region: every pixel predicted as the class; each-object: one request per connected
 * component (4-connected) of the prediction of the class; gt-object: one per connected component
 * of the class in the ground truth; whole: the whole image (S summed over every pixel).
 */
export const REGION_RULES = ['class-region', 'each-object', 'gt-object', 'whole'] as const;
export type RegionRule = (typeof REGION_RULES)[number];

export interface BatchPlan {
  /** Class indices or names, or 'present': every class predicted in the image (for gt-object: present in the ground truth). */
  classes: string[] | 'present';
  /** Classes left out of 'present' (e.g. the background). */
  ignoreClasses?: string[];
  region: RegionRule;
  /** Layer names or 'bottleneck' (default ['bottleneck']). */
  layers?: string[];
  /** Method names (default ['seg-grad-cam']). */
  methods?: string[];
  score?: ScoreKind;
  methodOptions?: MethodOptions;
  /** Heatmap threshold for the IoU with the ground-truth object (default 0.5). */
  iouThreshold?: number;
  colormap?: string;
  /** Heatmap opacity of the overlay PNG (default 0.5). */
  opacity?: number;
}

/** One request of an item, with the key that names it in the results and the ledger. */
export interface PlannedRequest {
  /** Unique within the item: class/region/layer/method. */
  key: string;
  classIndex: number;
  /** The region rule and, for objects, the component number (e.g. 'each-object-2'). */
  regionTag: string;
  layer: string;
  method: string;
  request: ExplainRequest;
  /** The ground-truth pixels this request is scored against (image resolution), when a mask was given. */
  gt?: Uint8Array;
}

export interface PlanContext {
  classNames?: readonly string[];
  classCount: number;
  imageWidth: number;
  imageHeight: number;
  /** The prediction over the output grid. */
  labels: Int32Array;
  outWidth: number;
  outHeight: number;
  /** Ground-truth class per image pixel, when given. */
  gt?: Uint8Array;
}

/** A class given as an index or a name, as its index (a 'class' error otherwise). */
export function resolveClass(c: string, classNames: readonly string[] | undefined, classCount: number): number {
  const byName = classNames?.indexOf(c) ?? -1;
  if (byName >= 0) return byName;
  if (/^\d+$/.test(c) && Number(c) < classCount) return Number(c);
  throw new SegGradCamError(
    `unknown class '${c}' (an index 0..${classCount - 1}${classNames ? ` or a name: ${classNames.join(', ')}` : ''})`,
    'class',
  );
}

/** The requests of one item, in a fixed order (classes, then regions, then layers, then methods). */
export function planRequests(plan: BatchPlan, ctx: PlanContext, item: { region?: RegionRule; classes?: string[] }): PlannedRequest[] {
  const rule = item.region ?? plan.region;
  if (rule === 'gt-object' && !ctx.gt) throw new SegGradCamError('region rule gt-object needs a ground-truth mask', 'region');
  const ignore = new Set((plan.ignoreClasses ?? []).map((c) => resolveClass(c, ctx.classNames, ctx.classCount)));
  const given = item.classes ?? plan.classes;
  let classes: number[];
  if (given === 'present' || (given.length === 1 && given[0] === 'present')) {
    const source = rule === 'gt-object' ? (ctx.gt as Uint8Array) : ctx.labels;
    classes = [...new Set(source)].filter((c) => c < ctx.classCount && !ignore.has(c)).sort((a, b) => a - b);
  } else classes = given.map((c) => resolveClass(c, ctx.classNames, ctx.classCount));
  const layers = plan.layers?.length ? plan.layers : ['bottleneck'];
  const methods = plan.methods?.length ? plan.methods : ['seg-grad-cam'];
  const out: PlannedRequest[] = [];
  for (const c of classes) {
    const gtClass = ctx.gt ? ctx.gt.map((v) => (v === c ? 1 : 0)) : undefined;
    for (const { tag, region, gt } of regionsOf(rule, c, ctx, gtClass))
      for (const layer of layers)
        for (const method of methods)
          out.push({
            key: `${c}/${tag}/${layer}/${method}`,
            classIndex: c,
            regionTag: tag,
            layer,
            method,
            request: { region, classId: c, layer, method, score: plan.score, methodOptions: plan.methodOptions },
            ...(gt ? { gt } : {}),
          });
  }
  return out;
}

function regionsOf(rule: RegionRule, c: number, ctx: PlanContext, gtClass: Uint8Array | undefined) {
  switch (rule) {
    case 'whole':
      return [{ tag: 'whole', region: whole(), gt: gtClass }];
    case 'class-region':
      return [{ tag: 'class-region', region: classRegion(), gt: gtClass }];
    case 'each-object': {
      const { outWidth: ow, outHeight: oh, imageWidth: W, imageHeight: H } = ctx;
      return components(
        Uint8Array.from(ctx.labels, (v) => (v === c ? 1 : 0)),
        ow,
        oh,
      ).map((cells, k) => {
        // The component's first cell in raster order, as the image pixel at its centre.
        const i = cells[0];
        const x = Math.floor((((i % ow) + 0.5) * W) / ow);
        const y = Math.floor(((Math.floor(i / ow) + 0.5) * H) / oh);
        return { tag: `each-object-${k}`, region: objectRegion(x, y) as Region, gt: gtClass };
      });
    }
    case 'gt-object': {
      const { imageWidth: W, imageHeight: H } = ctx;
      return components(gtClass as Uint8Array, W, H).map((pixels, k) => {
        const m = new Uint8Array(W * H);
        for (const i of pixels) m[i] = 1;
        return { tag: `gt-object-${k}`, region: maskRegion(W, H, m), gt: m };
      });
    }
  }
}

/** The 4-connected components of the non-zero cells, each as its cell indices (components in raster order of their first cell). */
export function components(mask: Uint8Array, width: number, height: number): number[][] {
  const labels = Int32Array.from(mask, (v) => (v ? 1 : 0));
  const seen = new Uint8Array(mask.length);
  const out: number[][] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!labels[start] || seen[start]) continue;
    const component = connectedComponent(labels, width, height, start % width, Math.floor(start / width));
    const cells: number[] = [];
    for (let i = start; i < mask.length; i++) {
      if (!component[i]) continue;
      cells.push(i);
      seen[i] = 1;
    }
    out.push(cells);
  }
  return out;
}
