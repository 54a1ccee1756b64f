/**
 * Backward runs on a pass's cache: K cotangents stacked per run (at most maxStack), on windows
 * around the regions where the graph allows it and that pays (./window.ts), grouped by the
 * window-grouping rule (../windows.ts); several layers' gradients from one run; the fused
 * forward + backward graph when the pass did not cache what the backward part reads.
 */
import type { Tensor as OrtTensor } from 'onnxruntime-common';
import { unionBox, type GridBox } from '../contract.js';
import { groupByWindow } from '../windows.js';
import type { GraphAnalysis } from './analysis.js';
import { ACTIVATION, COTANGENT, GRADIENT, extraGradientName, gradientPath } from './gradient.js';
import { stackNchw, type Cotangent } from './cotangent.js';
import { embedNchw } from './layout.js';
import type { OnnxAdapterOptions, OrtRuntime } from './options.js';
import type { Compiled, OnnxSessions } from './sessions.js';
import {
  scaleKey,
  unionWindows,
  windowFeeds,
  windowFraction,
  windowPlan,
  windowsFor,
  type Box,
  type WindowInput,
  type WindowPlan,
  type Windows,
} from './window.js';

export class BackwardRuns {
  /** rootOf's answers by layer set. */
  private readonly roots = new Map<string, string | null>();

  constructor(
    private readonly ort: OrtRuntime,
    private readonly an: GraphAnalysis,
    private readonly options: OnnxAdapterOptions,
    private readonly logitsName: string,
    private readonly inputName: string,
    private readonly sessions: OnnxSessions,
  ) {}

  /**
   * The windows a backward run for cotangents nonzero only inside `support` can use, or null: the
   * graph has no window plan, or the windows would not be much smaller than the maps.
   */
  windowFor(e: Compiled, support: GridBox | null): Windows | null {
    const maxArea = this.options.windowMaxArea ?? 0.75;
    if (maxArea <= 0) return null;
    if (e.plan === undefined) {
      const plan = windowPlan(this.an, e.graph.layer, this.logitsName);
      e.plan = 'reason' in plan ? null : plan;
    }
    if (!e.plan) return null;
    const windows = windowsFor(
      e.plan,
      support ?? [
        [0, 1],
        [0, 1],
      ],
      this.an,
    );
    return windowFraction(e.plan, windows) <= maxArea ? windows : null;
  }

  /**
   * K stacked cotangents in groups for backward runs of at most `stack`, each with its windows
   * (null: the whole map), by the window-grouping rule of ../windows.ts (the cost of a window: the
   * mean fraction of the maps it covers).
   */
  private backwardGroups(e: Compiled, cotangents: Cotangent[], stack: number): Array<{ members: number[]; windows: Windows | null }> {
    const windows = cotangents.map((c) => this.windowFor(e, c.support) ?? undefined);
    const plan = e.plan as WindowPlan;
    return groupByWindow(windows, (w) => windowFraction(plan, w), unionWindows, stack).map(({ members, window }) => ({
      members,
      windows: window ?? null,
    }));
  }

  /**
   * The windows' feeds: the cropped cotangents, the windows' starts and ends per scale, the pads
   * between scales. `as`: a region fed in the cotangent's place (one channel, ./seed.ts).
   */
  windowInputs(cotangents: Cotangent[], windows: Windows, inputs: WindowInput[], as?: string): Record<string, OrtTensor> {
    const [, channels, h, w] = this.an.shape(this.logitsName);
    const c = as ? 1 : channels;
    const win = windows.get(scaleKey([1, 1])) as Box;
    const crop = stackNchw(cotangents, h, w, c, win);
    const feeds: Record<string, OrtTensor> = {
      [as ?? COTANGENT]: new this.ort.Tensor('float32', crop, [cotangents.length, c, win[0][1] - win[0][0], win[1][1] - win[1][0]]),
    };
    for (const [n, v] of Object.entries(windowFeeds(windows, inputs))) feeds[n] = new this.ort.Tensor('int64', v, [v.length]);
    return feeds;
  }

  /** A windowed gradient output as the tensor's whole map (zeros outside its scale's window). */
  unwindow(e: Compiled, part: OrtTensor, tensor: string, windows: Windows): Float32Array {
    const [k, c, ph, pw] = part.dims as number[];
    const [, , h, w] = this.an.shape(tensor);
    const [sy, sx] = (e.plan as WindowPlan).scale.get(tensor) as [number, number];
    const win = windows.get(scaleKey([sy, sx])) as Box;
    return embedNchw(part.data as Float32Array, k * c, ph, pw, h, w, win[0][0] / sy, win[1][0] / sx);
  }

  /**
   * Runs the backward part on cached tensors, on `windows` (by default: windowFor's, when that
   * pays; null: the whole map), and returns each gradient output as a whole map.
   */
  private async runBackward(
    e: Compiled,
    cache: Map<string, OrtTensor>,
    cotangents: Cotangent[],
    windows?: Windows | null,
  ): Promise<Float32Array[]> {
    const outputs: Array<[string, string]> = [
      [GRADIENT, e.graph.layer],
      ...e.graph.alsoLayers.map((t, i): [string, string] => [extraGradientName(i), t]),
    ];
    const win = windows === undefined ? this.windowFor(e, unionSupport(cotangents)) : windows;
    if (win) {
      const b = await this.sessions.windowedBackward(e);
      const feeds = this.windowInputs(cotangents, win, b.windowInputs);
      for (const i of b.inputs) feeds[i] = cache.get(i) as OrtTensor;
      const res = await b.session.run(feeds);
      return outputs.map(([name, t]) => this.unwindow(e, res[name], t, win));
    }
    const b = await this.sessions.backward(e);
    const feeds: Record<string, OrtTensor> = { [COTANGENT]: this.cotangentTensor(cotangents) };
    for (const i of b.inputs) feeds[i] = cache.get(i) as OrtTensor;
    const res = await b.session.run(feeds);
    return outputs.map(([name]) => res[name].data as Float32Array);
  }

  /** Runs ∂S/∂A for K cotangents of one pass (the gradients NCHW, stacked). */
  async runGradient(tensor: string, cache: Map<string, OrtTensor>, cotangents: Cotangent[]): Promise<Float32Array> {
    const e = this.sessions.entry(tensor);
    const g = e.graph;
    const k = cotangents.length;
    // A graph that is not batchable takes one cotangent per run.
    const stack = g.batchable ? Math.max(1, this.options.maxStack ?? 4) : 1;
    const size = this.an.shape(tensor).reduce((a, b) => a * b, 1);
    if (!cache.has(tensor) || !g.saved.every((s) => cache.has(s))) {
      // The pass did not cache what the backward part reads: the fused forward + backward graph
      // runs the first stack and fills the cache; the rest runs backward-only.
      const n = Math.min(k, stack);
      const fused = await this.sessions.fused(e);
      const res = await fused.run({
        [this.inputName]: cache.get(this.inputName) as OrtTensor,
        [COTANGENT]: this.cotangentTensor(cotangents.slice(0, n)),
      });
      for (const s of g.saved) if (!cache.has(s) && res[s]) cache.set(s, res[s]);
      if (!cache.has(tensor)) cache.set(tensor, res[ACTIVATION]);
      const first = res[GRADIENT].data as Float32Array;
      if (n === k) return first;
      const out = new Float32Array(k * size);
      out.set(first);
      out.set(await this.runGradient(tensor, cache, cotangents.slice(n)), n * size);
      return out;
    }
    const groups = this.backwardGroups(e, cotangents, stack);
    if (groups.length === 1) return (await this.runBackward(e, cache, cotangents, groups[0].windows))[0];
    const out = new Float32Array(k * size);
    for (const { members, windows } of groups) {
      const [part] = await this.runBackward(
        e,
        cache,
        members.map((i) => cotangents[i]),
        windows,
      );
      members.forEach((i, j) => out.set(part.subarray(j * size, (j + 1) * size), i * size));
    }
    return out;
  }

  /**
   * The tensor among `tensors` (or the input) from which every other one is on the
   * path to the logits — one backward run from it passes them all; null when there is none.
   */
  rootOf(tensors: string[]): string | null {
    const key = tensors.join('|');
    const known = this.roots.get(key);
    if (known !== undefined) return known;
    const position = new Map(this.an.ordered().map((n, i) => [n.output[0], i]));
    const earliest = [...tensors].sort((a, b) => (position.get(a) ?? -1) - (position.get(b) ?? -1))[0];
    let root: string | null = null;
    for (const candidate of [earliest, this.inputName]) {
      try {
        const { onPath } = gradientPath(this.an, candidate, this.logitsName);
        if (tensors.every((t) => t === candidate || onPath.has(t))) {
          root = candidate;
          break;
        }
      } catch {
        // The candidate does not reach the logits.
      }
    }
    this.roots.set(key, root);
    return root;
  }

  /**
   * ∂S/∂(root) and ∂S/∂(each of `also`) for one cotangent in one backward run (NCHW);
   * null when the pass did not cache what that backward reads.
   */
  async runGradientLayers(
    root: string,
    also: string[],
    cache: Map<string, OrtTensor>,
    cotangent: Cotangent,
  ): Promise<Float32Array[] | null> {
    const e = this.sessions.entry(root, also);
    if (!e.graph.saved.every((s) => cache.has(s))) return null;
    return this.runBackward(e, cache, [cotangent]);
  }

  /** A region (one channel, [H, W]) as a whole-map [1, 1, H, W] input (./seed.ts). */
  regionTensor(region: Cotangent): OrtTensor {
    const [, , h, w] = this.an.shape(this.logitsName);
    return new this.ort.Tensor('float32', stackNchw([region], h, w, 1), [1, 1, h, w]);
  }

  /** K cotangents as the gradient graphs' cotangent input (whole maps, NCHW, stacked). */
  cotangentTensor(cotangents: Cotangent[]): OrtTensor {
    const d = this.an.shape(this.logitsName);
    const [c, h, w] = d.length === 4 ? [d[1], d[2], d[3]] : [d.slice(1).reduce((a, b) => a * b, 1), 1, 1];
    return new this.ort.Tensor('float32', stackNchw(cotangents, h, w, c), [cotangents.length, ...d.slice(1)]);
  }
}

/** The box holding every cotangent's support (null: all are zero). */
function unionSupport(cotangents: Cotangent[]): GridBox | null {
  let box: GridBox | null = null;
  for (const { support: s } of cotangents) if (s) box = box ? unionBox(box, s) : s;
  return box;
}
