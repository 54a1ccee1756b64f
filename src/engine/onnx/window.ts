/**
 * Backward passes cropped to the region's support ("windowed").
 *
 * A region's cotangent is zero outside its bounding box, and each backward op spreads it only
 * by its kernel: ∂S/∂t is zero outside a box that grows by a few pixels per convolution. When
 * every op on the path is translation-equivariant (convolutions, pointwise ops, channel concats,
 * up-convolutions), the backward ops give exactly the same numbers on a window that contains
 * every tensor's support as on the whole map — a window edge inside the image only ever "pads"
 * with cotangents that are zero anyway, and a window edge at the image border is the border. So
 * the backward part runs on the window: its saved forward tensors are sliced to it in the graph
 * (inputs `sgc/window_<sy>x<sx>_starts|ends`, one pair per scale), the cotangent is fed cropped,
 * and the gradient comes back cropped (the caller puts it into a map of zeros).
 *
 * Each scale on the path (logits size / tensor size: 1, 2, 4, … in a U-Net) has its own window,
 * a box in logits coordinates that covers the support of every tensor at that scale (computed
 * per region by `windowsFor`, in JS, from per-op interval rules): the fine levels work on the
 * region and a few pixels around it, only the coarse ones on the wider area their kernels reach.
 * Where a gradient changes scale (an up-convolution's VJP, a strided Conv), the fine window,
 * aligned to whole coarse pixels, gives the coarse gradient on its own footprint, which a Pad
 * (input `sgc/window_pad_<from>_<to>`) places in the larger coarse window.
 */
import { unionBox, type GridBox } from '../contract.js';
import type { GraphAnalysis } from './analysis.js';
import { GraphBuilder, valueInfo } from './builder.js';
import {
  COTANGENT,
  GRADIENT,
  buildGradientGraph,
  extraGradientName,
  gradientPath,
  type GradientGraph,
  type GradientGraphOptions,
} from './gradient.js';
import { opGradient } from './ops/index.js';
import type { BoxMap } from './ops/context.js';
import { DataType, type ModelProto, type NodeProto } from './proto.js';

/** [start, end) per spatial axis (y, x). */
export type Box = GridBox;

interface Step {
  node: NodeProto;
  /** On-path inputs and how the node's output box maps to each one's. */
  inputs: Array<{ tensor: string; map: BoxMap }>;
  /** Its VJP runs on whole maps (an op with only a `wholeMapBox` rule: MaxPool, Resize). */
  whole: boolean;
}

export interface WindowPlan {
  logits: string;
  /** Spatial size of the logits. */
  dims: [number, number];
  /** Per tensor on the path: logits size / tensor size, per axis. */
  scale: Map<string, [number, number]>;
  /** Per scale (see scaleKey), finest first: what its window's ends are multiples of, and the finer scales whose gradients come into it. */
  scales: Array<{ key: string; align: [number, number]; from: string[] }>;
  /** Nodes on the path, last first. */
  steps: Step[];
}

/** Windows per scale key, in logits coordinates. */
export type Windows = Map<string, Box>;

export const scaleKey = (s: readonly [number, number]) => `${s[0]}x${s[1]}`;

/**
 * An input of a windowed graph: one scale's window starts or ends (int64 [2]), the pads from one
 * scale's window into a coarser one's (int64 [8]), or the pads from one scale's window to its whole
 * map (int64 [8]; `dims`: the map's size at that scale).
 */
export type WindowInput =
  | { name: string; scale: string; end: 'starts' | 'ends' }
  | { name: string; from: string; to: string }
  | { name: string; whole: string; dims: [number, number] };

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * The plan for windowed backward passes from the logits to `layer` (and `alsoLayers`), or the
 * reason there is none (an op or a shape the window rules do not cover: those graphs run whole).
 */
export function windowPlan(an: GraphAnalysis, layer: string, logits: string): WindowPlan | { reason: string } {
  const ls = an.shape(logits);
  if (ls.length !== 4 || ls[0] !== 1) return { reason: 'the logits are not a [1, C, H, W] map' };
  const dims: [number, number] = [ls[2], ls[3]];
  const { nodes, onPath } = gradientPath(an, layer, logits);
  const scale = new Map<string, [number, number]>();
  for (const t of onPath) {
    const s = an.shape(t);
    if (s.length !== 4 || s[0] !== 1 || dims[0] % s[2] !== 0 || dims[1] % s[3] !== 0)
      return { reason: `tensor '${t}' is not a map whose size divides the logits'` };
    scale.set(t, [dims[0] / s[2], dims[1] / s[3]]);
  }
  const steps: Step[] = [];
  for (const node of [...nodes].reverse()) {
    const rule = boxRule(an, node);
    if (typeof rule === 'string') return { reason: `node '${node.name || node.output[0]}' (${node.opType}): ${rule}` };
    const { map, whole } = rule;
    steps.push({ node, whole, inputs: node.input.filter((i) => i && onPath.has(i)).map((tensor) => ({ tensor, map })) });
  }
  // A scale's window ends on whole pixels of itself and of every coarser scale its gradients go to.
  const byKey = new Map<string, { s: [number, number]; align: [number, number]; from: Set<string> }>();
  for (const s of scale.values()) if (!byKey.has(scaleKey(s))) byKey.set(scaleKey(s), { s, align: s, from: new Set() });
  for (const { node, inputs, whole } of steps) {
    // A whole-map VJP pads its output gradients and slices its input gradients at their own scales.
    if (whole) continue;
    const out = scale.get(node.output[0]) as [number, number];
    for (const { tensor } of inputs) {
      const to = scale.get(tensor) as [number, number];
      if (scaleKey(to) === scaleKey(out)) continue;
      if (to[0] < out[0] || to[1] < out[1])
        return { reason: `node '${node.name || node.output[0]}' (${node.opType}) takes gradients to a finer scale` };
      const src = byKey.get(scaleKey(out)) as { align: [number, number] };
      src.align = [lcm(src.align[0], to[0]), lcm(src.align[1], to[1])];
      byKey.get(scaleKey(to))?.from.add(scaleKey(out));
    }
  }
  for (const { align } of byKey.values()) {
    if (dims[0] % align[0] !== 0 || dims[1] % align[1] !== 0)
      return { reason: `the logits (${dims.join('x')}) are not a multiple of ${align.join('x')}` };
  }
  const scales = [...byKey.entries()]
    .sort((a, b) => a[1].s[0] * a[1].s[1] - b[1].s[0] * b[1].s[1])
    .map(([key, v]) => ({ key, align: v.align, from: [...v.from] }));
  return { logits, dims, scale, scales, steps };
}

/**
 * How a node's output box maps to its on-path input's (its op's window rule, ./ops/; else its
 * whole-map box rule, the VJP then running on whole maps), or why the node cannot run windowed.
 */
function boxRule(an: GraphAnalysis, node: NodeProto): { map: BoxMap; whole: boolean } | string {
  if (node.domain && node.domain !== 'ai.onnx') return 'not a default-domain op';
  const record = opGradient(node);
  const windowed = record?.window?.(an, node);
  if (typeof windowed === 'function') return { map: windowed, whole: false };
  const whole = record?.wholeMapBox?.(an, node);
  if (typeof whole === 'function') return { map: whole, whole: true };
  return windowed ?? whole ?? 'no window rule';
}

const clampBox = (b: Box, h: number, w: number): Box | null => {
  const y: [number, number] = [Math.max(0, b[0][0]), Math.min(h, b[0][1])];
  const x: [number, number] = [Math.max(0, b[1][0]), Math.min(w, b[1][1])];
  return y[0] < y[1] && x[0] < x[1] ? [y, x] : null;
};

const union = (a: Box | undefined, b: Box): Box => (a ? unionBox(a, b) : b);

/**
 * The window of each scale (logits coordinates, aligned, inside the map) for cotangents nonzero
 * only inside `support` (a box at the logits): it holds the support of every tensor's gradient at
 * that scale and the windows of the finer scales whose gradients come into it.
 */
export function windowsFor(plan: WindowPlan, support: Box, an: GraphAnalysis): Windows {
  const boxes = new Map<string, Box>([[plan.logits, support]]);
  const reach = new Map<string, Box>([[scaleKey(plan.scale.get(plan.logits) as [number, number]), support]]);
  for (const step of plan.steps) {
    let out: Box | undefined;
    for (const o of step.node.output) {
      const b = boxes.get(o);
      if (b) out = union(out, b);
    }
    if (!out) continue;
    for (const { tensor, map } of step.inputs) {
      const s = an.shape(tensor);
      const b = clampBox(map(out), s[2], s[3]);
      if (!b) continue;
      boxes.set(tensor, union(boxes.get(tensor), b));
      const [sy, sx] = plan.scale.get(tensor) as [number, number];
      const key = scaleKey([sy, sx]);
      reach.set(
        key,
        union(reach.get(key), [
          [b[0][0] * sy, b[0][1] * sy],
          [b[1][0] * sx, b[1][1] * sx],
        ]),
      );
    }
  }
  const windows: Windows = new Map();
  for (const { key, align, from } of plan.scales) {
    let w = reach.get(key);
    for (const f of from) w = union(w, windows.get(f) as Box);
    windows.set(
      key,
      w
        ? ([0, 1].map((i) => [
            Math.floor(w[i][0] / align[i]) * align[i],
            Math.min(plan.dims[i], Math.ceil(w[i][1] / align[i]) * align[i]),
          ]) as Box)
        : [
            [0, align[0]],
            [0, align[1]],
          ],
    );
  }
  return windows;
}

/** Per scale, the box holding both windows (valid windows for the two regions' cotangents stacked). */
export function unionWindows(a: Windows, b: Windows): Windows {
  const out: Windows = new Map();
  for (const [key, w] of a) out.set(key, union(w, b.get(key) ?? w));
  return out;
}

/**
 * The fraction of the backward part's pixels the windows cover (what a windowed run costs,
 * roughly): each scale's covered fraction weighted by its pixel count (1/(sy·sx) of the logits').
 * A plain mean over scales had counted a 2x2 map as much as the full-size one: with whole-map
 * VJPs (MaxPool, Resize) the coarse scales' windows are often their whole maps while the costly
 * full-size one is small.
 */
export function windowFraction(plan: WindowPlan, windows: Windows): number {
  let sum = 0;
  let weights = 0;
  for (const [key, w] of windows) {
    const [sy, sx] = key.split('x').map(Number);
    const weight = 1 / (sy * sx);
    sum += (weight * ((w[0][1] - w[0][0]) * (w[1][1] - w[1][0]))) / (plan.dims[0] * plan.dims[1]);
    weights += weight;
  }
  return weights > 0 ? sum / weights : 1;
}

/** The windows' inputs as fed: starts and ends in the scale's own pixels, pads in the coarser scale's. */
export function windowFeeds(windows: Windows, inputs: WindowInput[]): Record<string, BigInt64Array> {
  const out: Record<string, BigInt64Array> = {};
  const pixels = (key: string) => key.split('x').map(Number);
  for (const input of inputs) {
    if ('whole' in input) {
      const [sy, sx] = pixels(input.whole);
      const w = windows.get(input.whole) as Box;
      const [h, wd] = input.dims;
      out[input.name] = BigInt64Array.from([0, 0, w[0][0] / sy, w[1][0] / sx, 0, 0, h - w[0][1] / sy, wd - w[1][1] / sx].map(BigInt));
    } else if ('scale' in input) {
      const [sy, sx] = pixels(input.scale);
      const w = windows.get(input.scale) as Box;
      const at = input.end === 'starts' ? 0 : 1;
      out[input.name] = BigInt64Array.from([BigInt(w[0][at] / sy), BigInt(w[1][at] / sx)]);
    } else {
      const [a, b] = [windows.get(input.from) as Box, windows.get(input.to) as Box];
      const [sy, sx] = pixels(input.to);
      out[input.name] = BigInt64Array.from(
        [0, 0, (a[0][0] - b[0][0]) / sy, (a[1][0] - b[1][0]) / sx, 0, 0, (b[0][1] - a[0][1]) / sy, (b[1][1] - a[1][1]) / sx].map(BigInt),
      );
    }
  }
  return out;
}

/** Builds the gradient graph with a Pad wherever a gradient changes scale, then windows its backward part. */
export function windowedGradientGraph(
  an: GraphAnalysis,
  layer: string,
  plan: WindowPlan,
  options: GradientGraphOptions = {},
): GradientGraph & { windowInputs: WindowInput[] } {
  const pads = new Map<string, WindowInput>();
  const keyOf = (t: string) => scaleKey(plan.scale.get(t) as [number, number]);
  let axes: string | null = null;
  const gg = buildGradientGraph(an, layer, plan.logits, {
    ...options,
    wholeMap: {
      nodes: new Set(plan.steps.filter((s) => s.whole).map((s) => s.node)),
      pad: (b, t, g) => {
        const key = keyOf(t);
        const name = `sgc/window_whole_${key}`;
        const s = an.shape(t);
        if (!pads.has(name)) pads.set(name, { name: b.claim(name), whole: key, dims: [s[2], s[3]] });
        return b.op('Pad', [g, name], { mode: { s: 'constant' } }, 'window_whole');
      },
      slice: (b, t, g) => {
        const key = keyOf(t);
        const [starts, ends] = (['starts', 'ends'] as const).map((end) => {
          const name = `sgc/window_${key}_${end}`;
          if (!pads.has(name)) pads.set(name, { name, scale: key, end });
          return name;
        });
        axes ??= b.ints('window_whole_axes', [2, 3]);
        return b.op('Slice', [g, starts, ends, axes], {}, 'window_cut');
      },
    },
    rescale: (b, from, to, g) => {
      const [a, c] = [scaleKey(plan.scale.get(from) as [number, number]), scaleKey(plan.scale.get(to) as [number, number])];
      if (a === c) return g;
      const name = `sgc/window_pad_${a}_${c}`;
      if (!pads.has(name)) pads.set(name, { name: b.claim(name), from: a, to: c });
      return b.op('Pad', [g, name], { mode: { s: 'constant' } }, 'window_pad');
    },
  });
  return windowedGraph(gg, plan, [...pads.values()]);
}

/**
 * The augmented graph with its backward part windowed: every saved forward tensor the backward
 * nodes read is sliced to the window at its scale, the cotangent input and the gradient outputs
 * get free spatial sizes. The forward part (and `sgc/activation`) is unchanged.
 */
function windowedGraph(gg: GradientGraph, plan: WindowPlan, pads: WindowInput[]): GradientGraph & { windowInputs: WindowInput[] } {
  const src = gg.model.graph;
  const backward = src.node.slice(gg.firstBackward, gg.firstBackward + gg.backwardNodes);
  const graph = {
    ...src,
    node: [...src.node],
    initializer: [...src.initializer],
    input: [...src.input],
    output: [...src.output],
    valueInfo: [],
  };
  const model: ModelProto = { ...gg.model, graph };
  const b = new GraphBuilder(graph, 'sgc/');
  const saved = new Set(gg.saved);
  const axes = b.ints('window_axes', [2, 3]);
  const ranges = new Map<string, WindowInput>();
  const sliced = new Map<string, string>();
  const slices: NodeProto[] = [];
  const sliceOf = (t: string): string => {
    let s = sliced.get(t);
    if (s) return s;
    const sc = plan.scale.get(t);
    if (!sc) throw new Error(`internal error: no scale for saved tensor '${t}'`);
    const key = scaleKey(sc);
    const [starts, ends] = (['starts', 'ends'] as const).map((end) => {
      const name = `sgc/window_${key}_${end}`;
      if (!ranges.has(name)) ranges.set(name, { name, scale: key, end });
      return name;
    });
    s = b.fresh(`window/${t}`);
    slices.push({ name: b.fresh('window_slice'), opType: 'Slice', input: [t, starts, ends, axes], output: [s], attribute: [] });
    sliced.set(t, s);
    return s;
  };
  // Whole-map VJPs (MaxPool, Resize) read the saved tensors whole.
  const rewritten = backward.map((n) =>
    gg.wholeMapNodes.has(n) ? n : { ...n, input: n.input.map((i) => (saved.has(i) ? sliceOf(i) : i)) },
  );
  graph.node = [...src.node.slice(0, gg.firstBackward), ...slices, ...rewritten, ...src.node.slice(gg.firstBackward + gg.backwardNodes)];
  const free = (name: string, dims: Array<number | string>) =>
    valueInfo(name, DataType.FLOAT, [dims[0], dims[1], `${name}_h`, `${name}_w`]);
  const windowInputs = [...new Map([...ranges.values(), ...pads].map((w) => [w.name, w])).values()];
  graph.input = [
    ...graph.input.map((i) => (i.name === COTANGENT ? free(COTANGENT, gg.cotangentShape) : i)),
    ...windowInputs.map((w) => valueInfo(w.name, DataType.INT64, ['scale' in w ? 2 : 8])),
  ];
  const gradientOutputs = new Set([GRADIENT, ...gg.alsoLayers.map((_, i) => extraGradientName(i))]);
  graph.output = graph.output.map((o) => {
    if (!gradientOutputs.has(o.name)) return o;
    const dims = o.type?.tensorType?.shape?.dim?.map((d) => (d.dimValue != null ? Number(d.dimValue) : (d.dimParam ?? '?'))) ?? ['K', '?'];
    return free(o.name, dims);
  });
  return { ...gg, model, windowInputs };
}
