/**
 * ONNX models explained through ONNX Runtime. Browser-safe: the runtime module is passed in
 * (`onnxruntime-node` in Node — see ./node.ts —, `onnxruntime-web` in the browser).
 *
 * ONNX Runtime has no autodiff, so gradients come from graphs the project compiles
 * (./gradient.ts). Sessions per model:
 *  - predict: the model as is;
 *  - forward: the model with every layer's output and every tensor a backward pass reads
 *    exposed as outputs (one run caches all of them);
 *  - per layer L (compiled on first use, least recently used released): the backward-only graph
 *    (cached tensors + cotangent → ∂S/∂A), and the fused forward + backward graph
 *    (input + cotangent → A, ∂S/∂A, logits) used when the pass did not cache what the backward
 *    part reads, and for input gradients of image batches.
 *
 * Layout: ONNX tensors are NCHW; everything returned to the project is NHWC ([1, h, w, c]), and
 * objective weights arrive as [H, W, C] — see ./layout.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import { SegGradCamError } from '../../errors.js';
import {
  INPUT_LAYER,
  unionBox,
  type BatchGradient,
  type GridBox,
  type ForwardPass,
  type GradientPrime,
  type LayerGradient,
  type LayerInfo,
  type ModelAdapter,
  type Objective,
  type OutputInfo,
} from '../contract.js';
import { unknownLayer } from '../tfjs-layers/adapter.js';
import { readOutputInfo } from '../tfjs/output-info.js';
import { GraphAnalysis, ORT_TYPES, type ProbedTensor } from './analysis.js';
import { attrInt, valueInfo } from './builder.js';
import {
  ACTIVATION,
  COTANGENT,
  GRADIENT,
  backwardGraph,
  buildGradientGraph,
  extraGradientName,
  gradientPath,
  type GradientGraph,
} from './gradient.js';
import { logitsCotangent, scoreOf, sigmoidProbabilities, stackNchw, weightsCotangent, type Cotangent } from './cotangent.js';
import { embedNchw, nchwToNhwc, nhwcToNchw, toNhwcShape } from './layout.js';
import { DataType, decodeModel, defaultOpset, encodeModel, type ModelProto } from './proto.js';
import {
  scaleKey,
  unionWindows,
  windowFeeds,
  windowFraction,
  windowPlan,
  windowedGradientGraph,
  windowsFor,
  type Box,
  type WindowInput,
  type WindowPlan,
  type Windows,
} from './window.js';

/** The parts of an onnxruntime module (onnxruntime-node or onnxruntime-web) the adapter uses. */
export interface OrtRuntime {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensor;
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): OrtTensor;
  };
}

export interface OnnxAdapterOptions {
  /** Input size, when the model's input has free height or width. */
  height?: number;
  width?: number;
  /** The model output to explain (default: the first). */
  outputName?: string;
  /** Passed to every ONNX Runtime session (default: all graph optimisations). */
  sessionOptions?: InferenceSession.SessionOptions;
  /**
   * What a forward pass caches: 'all' (every layer and every tensor a backward pass reads: any
   * layer's gradient then runs only the backward ops) or a list of layers and what their
   * backward graphs read (a cheaper forward; other layers' gradients run the fused forward +
   * backward graph once, then are cached; `activation()` of an uncached layer throws until then).
   */
  cacheLayers?: 'all' | string[];
  /** Layers whose compiled gradient sessions are kept (default 8). */
  maxCompiledLayers?: number;
  /** Cotangents stacked per backward run in gradientBatch (default 4: larger stacks outgrow the caches). */
  maxStack?: number;
  /**
   * Run backward parts on a window around the region's support when the graph allows it and the
   * window is at most this fraction of the logits' area (default 0.75; 0 turns windows off).
   * The numbers are the same as on the whole map (see ./window.ts).
   */
  windowMaxArea?: number;
}

interface Compiled {
  graph: GradientGraph;
  backward?: { session: InferenceSession; inputs: string[] };
  fused?: InferenceSession;
  /** The fused graph that also outputs what a forward pass caches (a primed first explanation), with the backward part whole or windowed. */
  primed?: PrimedSession;
  primedWindowed?: PrimedSession;
  /** The forward pass caching only the layer and what its backward part reads. */
  leanForward?: { session: InferenceSession; names: string[] };
  /** How the backward part runs on a window (null: it cannot). */
  plan?: WindowPlan | null;
  windowedBackward?: { session: InferenceSession; inputs: string[]; windowInputs: WindowInput[] };
}

interface PrimedSession {
  session: InferenceSession;
  /** The forward tensors it outputs (the pass's cache). */
  names: string[];
  windowInputs: WindowInput[];
}

/**
 * Session defaults. Spinning is off: every session has its own intra-op thread pool, and a pool
 * that keeps spinning after its run steals a core from the next session's run — a forward run
 * followed by a backward run took ~1.8x the sum of the two alone on 2 cores (scratch measurement,
 * docs/onnx.md); without spinning a lone run is as fast.
 */
export const DEFAULT_SESSION_OPTIONS: InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  logSeverityLevel: 3,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

export class OnnxModelAdapter implements ModelAdapter {
  readonly kind = 'onnx';
  readonly maxBatch = 1;
  readonly input: { height: number; width: number; channels: number };
  readonly output: OutputInfo;
  /** The tensor read as logits: the model output, or the input of a final Softmax/Sigmoid. */
  readonly logitsName: string;
  readonly inputName: string;
  /** NCHW input dims. */
  readonly inputDims: number[];
  private readonly layerList: LayerInfo[];
  private readonly compiled = new Map<string, Compiled>();
  /** rootOf's answers by layer set. */
  private readonly roots = new Map<string, string | null>();
  private readonly fusedVariants = new Map<string, { graph: GradientGraph; session: InferenceSession }>();
  private predictSession: InferenceSession | null = null;
  private forwardSession: { session: InferenceSession; names: string[] } | null = null;
  private disposed = false;

  private constructor(
    readonly ort: OrtRuntime,
    readonly model: ModelProto,
    readonly analysis: GraphAnalysis,
    private readonly options: OnnxAdapterOptions,
    activation: OutputInfo['activation'],
    logitsName: string,
  ) {
    this.inputName = analysis.inputName;
    this.inputDims = analysis.shape(this.inputName);
    const [, channels, height, width] = this.inputDims;
    this.input = { height, width, channels };
    this.logitsName = logitsName;
    this.output = readOutputInfo(toNhwcShape(analysis.shape(logitsName)), activation);
    this.layerList = analysis.layerNames(logitsName).map((name) => ({
      name,
      type: analysis.producer.get(name)?.opType ?? 'Input',
      outputShape: toNhwcShape(analysis.shape(name)),
    }));
  }

  /** Loads a model from .onnx bytes: parses it and runs the shape probe. */
  static async create(bytes: Uint8Array, ort: OrtRuntime, options: OnnxAdapterOptions = {}): Promise<OnnxModelAdapter> {
    const model = decodeModel(bytes);
    const opset = defaultOpset(model);
    const g = model.graph;
    const inits = new Set(g.initializer.map((t) => t.name));
    const inputs = g.input.filter((i) => !inits.has(i.name));
    if (inputs.length !== 1)
      throw new SegGradCamError(
        `unsupported model: expected one input, got ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`,
        'model',
      );
    const input = inputs[0];
    const tt = input.type?.tensorType;
    if (tt?.elemType !== DataType.FLOAT) throw new SegGradCamError(`unsupported model: input '${input.name}' is not float32`, 'model');
    const dims = tt.shape?.dim ?? [];
    if (dims.length !== 4)
      throw new SegGradCamError(
        `unsupported model input shape (rank ${dims.length}): expected [batch, channels, height, width] (NCHW)`,
        'model',
      );
    const fixed = (i: number, given: number | undefined, what: string) => {
      const v = dims[i].dimValue;
      if (v != null && v > 0) {
        if (given != null && given !== v) throw new SegGradCamError(`the model's input ${what} is fixed at ${v}, not ${given}`, 'shape');
        return Number(v);
      }
      if (given == null)
        throw new SegGradCamError(`the model's input ${what} is free ('${dims[i].dimParam ?? '?'}'): give the ${what} to use`, 'shape');
      return given;
    };
    const batch = dims[0].dimValue;
    if (batch != null && batch > 1) throw new SegGradCamError(`unsupported model: input batch is fixed at ${batch}`, 'model');
    const nchw = [1, fixed(1, undefined, 'channel count'), fixed(2, options.height, 'height'), fixed(3, options.width, 'width')];

    const outputName = options.outputName ?? g.output[0]?.name;
    if (!outputName || !g.node.some((n) => n.output.includes(outputName)))
      throw new SegGradCamError(`unknown model output '${outputName ?? ''}'`, 'model');

    // One probe run with every node output exposed: shapes, types, shape-arithmetic values.
    const probeModel: ModelProto = { ...model, graph: { ...g, output: [...g.output], valueInfo: [] } };
    const declared = new Set(g.output.map((o) => o.name));
    for (const n of g.node) {
      for (const o of n.output) {
        if (!o || declared.has(o)) continue;
        declared.add(o);
        probeModel.graph.output.push({ name: o });
      }
    }
    const probe = new Map<string, ProbedTensor>();
    const session = await ort.InferenceSession.create(encodeModel(probeModel), {
      ...DEFAULT_SESSION_OPTIONS,
      graphOptimizationLevel: 'disabled',
    });
    try {
      const x = new ort.Tensor('float32', new Float32Array(nchw.reduce((a, b) => a * b, 1)), nchw);
      const res = await session.run({ [input.name]: x });
      for (const [name, t] of Object.entries(res)) {
        const dataType = ORT_TYPES[t.type] ?? 0;
        const entry: ProbedTensor = { dims: [...t.dims], dataType };
        if (t.size <= 64 && dataType !== DataType.STRING) entry.values = Array.from(t.data as ArrayLike<number | bigint>, Number);
        probe.set(name, entry);
      }
    } finally {
      await session.release();
    }
    probe.set(input.name, { dims: nchw, dataType: DataType.FLOAT });
    const analysis = new GraphAnalysis(model, probe, { inputName: input.name, outputName, opset });

    let activation: OutputInfo['activation'] = 'none';
    let logits = outputName;
    const last = analysis.producer.get(outputName);
    const rank = analysis.shape(outputName).length;
    if (last?.opType === 'Sigmoid') {
      activation = 'sigmoid';
      logits = last.input[0];
    } else if (last?.opType === 'Softmax') {
      let axis = attrInt(last, 'axis', opset >= 13 ? -1 : 1);
      if (axis < 0) axis += rank;
      // Per-pixel softmax over channels (axis 1); before opset 13 an axis-1 softmax on a map normalises over C·H·W instead.
      if (axis === 1 && (rank === 2 || opset >= 13)) {
        activation = 'softmax';
        logits = last.input[0];
      }
    }
    return new OnnxModelAdapter(ort, model, analysis, options, activation, logits);
  }

  layers(): LayerInfo[] {
    return this.layerList.map((l) => ({ ...l, outputShape: [...l.outputShape] }));
  }

  /** The graph tensor behind a layer name (INPUT_LAYER and the input's own name give the input). */
  resolve(layer: string): string {
    if (layer === INPUT_LAYER || layer === this.inputName) return this.inputName;
    if (this.layerList.some((l) => l.name === layer)) return layer;
    const an = this.analysis;
    if (an.producer.has(layer) && an.dataDependent.has(layer) && an.isFloat(layer) && an.shape(layer).length === 4) return layer;
    throw unknownLayer(layer, [{ name: INPUT_LAYER, type: 'Input', outputShape: toNhwcShape(this.inputDims) }, ...this.layerList]);
  }

  private sessionOptions(): InferenceSession.SessionOptions {
    return { ...DEFAULT_SESSION_OPTIONS, ...this.options.sessionOptions };
  }

  /** Sessions created or being created, by owner (the adapter or a layer's entry) and slot. */
  private readonly creating = new WeakMap<object, Map<string, Promise<InferenceSession>>>();

  /**
   * A new session for `model`. Concurrent first uses of one slot (owner + slot name) share one
   * creation: each call used to create its own and keep only the last, leaking the others.
   */
  private createSession(model: ModelProto, owner: object, slot: string): Promise<InferenceSession> {
    let slots = this.creating.get(owner);
    if (!slots) this.creating.set(owner, (slots = new Map()));
    const known = slots.get(slot);
    if (known) return known;
    const made = this.ort.InferenceSession.create(encodeModel(model), this.sessionOptions());
    const pending = slots;
    pending.set(slot, made);
    // Kept once made (the slot then holds that very session); a failed creation may be retried.
    void made.catch(() => pending.delete(slot));
    return made;
  }

  private check() {
    if (this.disposed) throw new Error('this ONNX adapter has been disposed');
  }

  /** The compiled gradient graph for a layer (built once, least recently used released). */
  gradientGraph(layer: string): GradientGraph {
    return this.entry(this.resolve(layer)).graph;
  }

  private entry(tensor: string, also: string[] = []): Compiled {
    const key = also.length > 0 ? `${tensor}|${also.join('|')}` : tensor;
    let e = this.compiled.get(key);
    if (e) {
      this.compiled.delete(key);
      this.compiled.set(key, e);
      return e;
    }
    e = { graph: buildGradientGraph(this.analysis, tensor, this.logitsName, { saveOutputs: true, alsoLayers: also }) };
    this.compiled.set(key, e);
    const max = this.options.maxCompiledLayers ?? 8;
    while (this.compiled.size > max) {
      const [oldest, old] = this.compiled.entries().next().value as [string, Compiled];
      this.compiled.delete(oldest);
      void old.backward?.session.release();
      void old.fused?.release();
      void old.primed?.session.release();
      void old.leanForward?.session.release();
      void old.windowedBackward?.session.release();
      void old.primedWindowed?.session.release();
    }
    return e;
  }

  private async backwardSession(e: Compiled): Promise<{ session: InferenceSession; inputs: string[] }> {
    if (!e.backward) {
      const { model, inputs } = backwardGraph(this.analysis, e.graph);
      e.backward = { session: await this.createSession(model, e, 'backward'), inputs };
    }
    return e.backward;
  }

  /** The layer's fused graph with the logits and what a forward pass caches as outputs too: all of it, or (lean) only the layer and what its backward part reads. */
  private async primedSession(e: Compiled, lean: boolean, windowed: boolean): Promise<PrimedSession> {
    const known = windowed ? e.primedWindowed : e.primed;
    if (known) return known;
    const names = lean
      ? this.leanNames(e)
      : [...new Set([...this.cacheNames(), e.graph.layer, ...e.graph.saved])].filter((n) => n !== this.inputName);
    const gg = windowed ? this.windowedGraph(e) : { ...e.graph, windowInputs: [] };
    const graph = gg.model.graph;
    const extra = graph.output.filter((o) => o.name === GRADIENT);
    const model = { ...gg.model, graph: { ...graph, output: [...names.map((n) => outputOf(n, this.analysis)), ...extra] } };
    const made = {
      session: await this.createSession(model, e, windowed ? 'primedWindowed' : 'primed'),
      names,
      windowInputs: gg.windowInputs,
    };
    if (windowed) e.primedWindowed = made;
    else e.primed = made;
    return made;
  }

  private async windowedBackwardSession(
    e: Compiled,
  ): Promise<{ session: InferenceSession; inputs: string[]; windowInputs: WindowInput[] }> {
    if (!e.windowedBackward) {
      const wg = this.windowedGraph(e);
      const { model, inputs } = backwardGraph(this.analysis, wg);
      e.windowedBackward = { session: await this.createSession(model, e, 'windowedBackward'), inputs, windowInputs: wg.windowInputs };
    }
    return e.windowedBackward;
  }

  private windowedGraph(e: Compiled) {
    return windowedGradientGraph(this.analysis, e.graph.layer, e.plan as WindowPlan, { saveOutputs: true, alsoLayers: e.graph.alsoLayers });
  }

  /**
   * The windows a backward run for cotangents nonzero only inside `support` can use, or null: the
   * graph has no window plan, or the windows would not be much smaller than the maps.
   */
  private windowFor(e: Compiled, support: GridBox | null): Windows | null {
    const maxArea = this.options.windowMaxArea ?? 0.75;
    if (maxArea <= 0) return null;
    if (e.plan === undefined) {
      const plan = windowPlan(this.analysis, e.graph.layer, this.logitsName);
      e.plan = 'reason' in plan ? null : plan;
    }
    if (!e.plan) return null;
    const windows = windowsFor(
      e.plan,
      support ?? [
        [0, 1],
        [0, 1],
      ],
      this.analysis,
    );
    return windowFraction(e.plan, windows) <= maxArea ? windows : null;
  }

  /**
   * K stacked cotangents in groups for backward runs of at most `stack`, each with its windows
   * (null: the whole map). With windows, a group holds regions whose windows nearly coincide (their
   * union costs at most 1.15x the largest member's): regions far apart get one windowed run each,
   * which beats one run on their union.
   */
  private backwardGroups(e: Compiled, cotangents: Cotangent[], stack: number): Array<{ members: number[]; windows: Windows | null }> {
    const groups: Array<{ members: number[]; windows: Windows | null; largest: number }> = [];
    for (let i = 0; i < cotangents.length; i++) {
      const w = this.windowFor(e, cotangents[i].support);
      const plan = e.plan as WindowPlan;
      const fit = groups.find((g) => {
        if (g.members.length >= stack || !g.windows !== !w) return false;
        return !w || !g.windows || windowFraction(plan, unionWindows(g.windows, w)) <= 1.15 * Math.max(g.largest, windowFraction(plan, w));
      });
      if (!fit) groups.push({ members: [i], windows: w, largest: w ? windowFraction(plan, w) : 1 });
      else {
        fit.members.push(i);
        if (w && fit.windows) {
          fit.windows = unionWindows(fit.windows, w);
          fit.largest = Math.max(fit.largest, windowFraction(plan, w));
        }
      }
    }
    return groups;
  }

  /** The windows' feeds: the cropped cotangents, the windows' starts and ends per scale, the pads between scales. */
  private windowInputs(cotangents: Cotangent[], windows: Windows, inputs: WindowInput[]): Record<string, OrtTensor> {
    const [, c, h, w] = this.analysis.shape(this.logitsName);
    const win = windows.get(scaleKey([1, 1])) as Box;
    const crop = stackNchw(cotangents, h, w, c, win);
    const feeds: Record<string, OrtTensor> = {
      [COTANGENT]: new this.ort.Tensor('float32', crop, [cotangents.length, c, win[0][1] - win[0][0], win[1][1] - win[1][0]]),
    };
    for (const [n, v] of Object.entries(windowFeeds(windows, inputs))) feeds[n] = new this.ort.Tensor('int64', v, [v.length]);
    return feeds;
  }

  /** A windowed gradient output as the tensor's whole map (zeros outside its scale's window). */
  private unwindow(e: Compiled, part: OrtTensor, tensor: string, windows: Windows): Float32Array {
    const [k, c, ph, pw] = part.dims as number[];
    const [, , h, w] = this.analysis.shape(tensor);
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
      const b = await this.windowedBackwardSession(e);
      const feeds = this.windowInputs(cotangents, win, b.windowInputs);
      for (const i of b.inputs) feeds[i] = cache.get(i) as OrtTensor;
      const res = await b.session.run(feeds);
      return outputs.map(([name, t]) => this.unwindow(e, res[name], t, win));
    }
    const b = await this.backwardSession(e);
    const feeds: Record<string, OrtTensor> = { [COTANGENT]: this.cotangentTensor(cotangents) };
    for (const i of b.inputs) feeds[i] = cache.get(i) as OrtTensor;
    const res = await b.session.run(feeds);
    return outputs.map(([name]) => res[name].data as Float32Array);
  }

  /** The logits, the layer and what its backward part reads. */
  private leanNames(e: Compiled): string[] {
    return [...new Set([this.logitsName, e.graph.layer, ...e.graph.saved])].filter((n) => n !== this.inputName);
  }

  /** The forward pass that caches only `leanNames`. */
  private async leanForwardSession(e: Compiled): Promise<{ session: InferenceSession; names: string[] }> {
    if (!e.leanForward) {
      const names = this.leanNames(e);
      e.leanForward = { session: await this.createSession(withOutputs(this.model, names, this.analysis), e, 'leanForward'), names };
    }
    return e.leanForward;
  }

  private async fusedSession(e: Compiled): Promise<InferenceSession> {
    e.fused ??= await this.createSession(withOutput(e.graph.model, this.logitsName, this.analysis), e, 'fused');
    return e.fused;
  }

  /** The tensors a forward pass caches. */
  private cacheNames(): string[] {
    const want = this.options.cacheLayers ?? 'all';
    const names = new Set<string>();
    if (want === 'all') {
      for (const l of this.layerList) names.add(l.name);
      try {
        for (const s of buildGradientGraph(this.analysis, this.inputName, this.logitsName).saved) names.add(s);
      } catch {
        // Some op on the way from the input is not differentiable: layers past it still work, through their fused graphs.
      }
    } else {
      // The listed layers and what their backward graphs read: their gradients then need no fused run.
      for (const l of want) {
        const t = this.resolve(l);
        names.add(t);
        try {
          for (const s of this.entry(t).graph.saved) names.add(s);
        } catch {
          // Not differentiable: the layer's activation is still cached.
        }
      }
    }
    names.delete(this.inputName);
    names.delete(this.logitsName);
    return [this.logitsName, ...names];
  }

  private async forwardRunner(): Promise<{ session: InferenceSession; names: string[] }> {
    if (!this.forwardSession) {
      const names = this.cacheNames();
      this.forwardSession = { session: await this.createSession(withOutputs(this.model, names, this.analysis), this, 'forward'), names };
    }
    return this.forwardSession;
  }

  private inputTensor(input: tf.Tensor4D | Float32Array): OrtTensor {
    const [, c, h, w] = this.inputDims;
    if (input instanceof Float32Array) return new this.ort.Tensor('float32', input, this.inputDims);
    const [n, ih, iw, ic] = input.shape;
    if (n !== 1 || ih !== h || iw !== w || ic !== c) {
      throw new SegGradCamError(`input shape [${input.shape.join(', ')}] does not match the model's [1, ${h}, ${w}, ${c}]`, 'shape');
    }
    return new this.ort.Tensor('float32', nhwcToNchw(input.dataSync(), 1, h, w, c), this.inputDims);
  }

  /** Logits for one NCHW input, as ONNX Runtime returns them (NCHW). */
  async predictNchw(input: Float32Array): Promise<Float32Array> {
    this.check();
    this.predictSession ??= await this.createSession(withOutputs(this.model, [this.logitsName], this.analysis), this, 'predict');
    const res = await this.predictSession.run({ [this.inputName]: this.inputTensor(input) });
    return res[this.logitsName].data as Float32Array;
  }

  async forward(input: tf.Tensor4D, prime?: GradientPrime): Promise<OnnxForwardPass> {
    this.check();
    const x = this.inputTensor(input);
    // With the default cache ('all'), a forward pass asked for one layer's gradient caches only
    // that layer and what its backward part reads (copying out every layer's output cost about
    // as much as the forward run itself); the rest is filled on first use (see OnnxForwardPass).
    const lazy = (this.options.cacheLayers ?? 'all') === 'all';
    if (prime) {
      const t = this.resolve(prime.layer);
      let e: Compiled | null = null;
      try {
        e = this.entry(t);
      } catch {
        // Not differentiable here: the plain forward pass; the gradient call reports why.
      }
      const objective = prime.objective;
      if (e && objective && objective.on === 'logits') {
        // An objective known before the forward pass (on logits): the forward pass, the cache and
        // the layer's gradient in one ONNX Runtime run (no second run that reads the cache back in).
        const cot = weightsCotangent(objective, this.output);
        const win = this.windowFor(e, cot.support);
        const { session, names, windowInputs } = await this.primedSession(e, lazy, !!win);
        const feeds = win ? this.windowInputs([cot], win, windowInputs) : { [COTANGENT]: this.cotangentTensor([cot]) };
        const res = await session.run({ ...feeds, [this.inputName]: x });
        const pass = this.passFrom(res, names, x, !lazy);
        pass.prime(prime.layer, objective, win ? this.unwindow(e, res[GRADIENT], t, win) : (res[GRADIENT].data as Float32Array));
        return pass;
      }
      if (e && lazy) {
        const { session, names } = await this.leanForwardSession(e);
        return this.passFrom(await session.run({ [this.inputName]: x }), names, x, false);
      }
    }
    const { session, names } = await this.forwardRunner();
    return this.passFrom(await session.run({ [this.inputName]: x }), names, x, true);
  }

  private passFrom(res: InferenceSession.OnnxValueMapType, names: string[], x: OrtTensor, complete: boolean): OnnxForwardPass {
    const cache = new Map<string, OrtTensor>(names.map((n) => [n, res[n] as OrtTensor]));
    cache.set(this.inputName, x);
    return new OnnxForwardPass(this, cache, complete);
  }

  /** @internal Adds everything a full forward pass caches to a pass's cache (one forward run). */
  async fillCache(cache: Map<string, OrtTensor>): Promise<void> {
    this.check();
    const { session, names } = await this.forwardRunner();
    const res = await session.run({ [this.inputName]: cache.get(this.inputName) as OrtTensor });
    for (const n of names) if (!cache.has(n)) cache.set(n, res[n] as OrtTensor);
  }

  /** @internal Runs ∂S/∂A for K cotangents of one pass (the gradients NCHW, stacked). */
  async runGradient(tensor: string, cache: Map<string, OrtTensor>, cotangents: Cotangent[]): Promise<Float32Array> {
    this.check();
    const e = this.entry(tensor);
    const g = e.graph;
    const k = cotangents.length;
    // A graph that is not batchable takes one cotangent per run.
    const stack = g.batchable ? Math.max(1, this.options.maxStack ?? 4) : 1;
    const size = this.analysis.shape(tensor).reduce((a, b) => a * b, 1);
    if (!cache.has(tensor) || !g.saved.every((s) => cache.has(s))) {
      // The pass did not cache what the backward part reads: the fused forward + backward graph
      // runs the first stack and fills the cache; the rest runs backward-only.
      const n = Math.min(k, stack);
      const fused = await this.fusedSession(e);
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
   * @internal The tensor among `tensors` (or the input) from which every other one is on the
   * path to the logits — one backward run from it passes them all; null when there is none.
   */
  rootOf(tensors: string[]): string | null {
    const key = tensors.join('|');
    const known = this.roots.get(key);
    if (known !== undefined) return known;
    const position = new Map(this.analysis.ordered().map((n, i) => [n.output[0], i]));
    const earliest = [...tensors].sort((a, b) => (position.get(a) ?? -1) - (position.get(b) ?? -1))[0];
    let root: string | null = null;
    for (const candidate of [earliest, this.inputName]) {
      try {
        const { onPath } = gradientPath(this.analysis, candidate, this.logitsName);
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
   * @internal ∂S/∂(root) and ∂S/∂(each of `also`) for one cotangent in one backward run (NCHW);
   * null when the pass did not cache what that backward reads.
   */
  async runGradientLayers(
    root: string,
    also: string[],
    cache: Map<string, OrtTensor>,
    cotangent: Cotangent,
  ): Promise<Float32Array[] | null> {
    this.check();
    const e = this.entry(root, also);
    if (!e.graph.saved.every((s) => cache.has(s))) return null;
    return this.runBackward(e, cache, [cotangent]);
  }

  /** The fused forward + backward session for a layer and score kind (used for batches of images). */
  private async fusedVariant(tensor: string, on: Objective['on']): Promise<{ graph: GradientGraph; session: InferenceSession }> {
    const key = `${on}|${tensor}`;
    let v = this.fusedVariants.get(key);
    if (!v) {
      const probability = sigmoidProbabilities(this.output) ? 'sigmoid' : 'softmax';
      const graph = buildGradientGraph(this.analysis, tensor, this.logitsName, { on, probability });
      v = { graph, session: await this.createSession(withOutput(graph.model, this.logitsName, this.analysis), this, key) };
      this.fusedVariants.set(key, v);
    }
    return v;
  }

  /** Each image of an NHWC batch, as NCHW data. */
  private *imagesNchw(inputs: tf.Tensor4D): Generator<Float32Array> {
    const [b, h, w, c] = inputs.shape;
    const data = inputs.dataSync();
    const per = h * w * c;
    for (let i = 0; i < b; i++) yield nhwcToNchw(data.subarray(i * per, (i + 1) * per), 1, h, w, c);
  }

  async scores(inputs: tf.Tensor4D, objective: Objective): Promise<Float32Array> {
    this.check();
    const out = new Float32Array(inputs.shape[0]);
    let i = 0;
    for (const x of this.imagesNchw(inputs)) out[i++] = scoreOf(this.logitsNhwc(await this.predictNchw(x)), objective, this.output);
    return out;
  }

  async inputGradients(inputs: tf.Tensor4D, objective: Objective): Promise<BatchGradient> {
    this.check();
    const [b, h, w, c] = inputs.shape;
    const per = h * w * c;
    const { session } = await this.fusedVariant(this.inputName, objective.on);
    const cot = this.cotangentTensor([weightsCotangent(objective, this.output)]);
    const grads = new Float32Array(b * per);
    const scores = new Float32Array(b);
    let i = 0;
    for (const x of this.imagesNchw(inputs)) {
      const res = await session.run({ [this.inputName]: this.inputTensor(x), [COTANGENT]: cot });
      grads.set(nchwToNhwc(res[GRADIENT].data as Float32Array, 1, c, h, w), i * per);
      scores[i++] = scoreOf(this.logitsNhwc(res[this.logitsName].data as Float32Array), objective, this.output);
    }
    return { gradients: tf.tensor4d(grads, [b, h, w, c]), scores };
  }

  /** K cotangents as the gradient graphs' cotangent input (whole maps, NCHW, stacked). */
  private cotangentTensor(cotangents: Cotangent[]): OrtTensor {
    const d = this.analysis.shape(this.logitsName);
    const [c, h, w] = d.length === 4 ? [d[1], d[2], d[3]] : [d.slice(1).reduce((a, b) => a * b, 1), 1, 1];
    return new this.ort.Tensor('float32', stackNchw(cotangents, h, w, c), [cotangents.length, ...d.slice(1)]);
  }

  /** @internal Logits NCHW → the project's layout. */
  logitsNhwc(nchw: Float32Array): Float32Array {
    const d = this.analysis.shape(this.logitsName);
    return d.length === 4 ? nchwToNhwc(nchw, d[0], d[1], d[2], d[3]) : nchw;
  }

  /** @internal Objective weights ([H, W, C]) as an NCHW cotangent. */
  cotangentNchw(weightsNhwc: Float32Array): Float32Array {
    return this.cotangentTensor([weightsCotangent({ weights: weightsNhwc, on: 'logits', offset: 0 }, this.output)]).data as Float32Array;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const sessions: InferenceSession[] = [];
    if (this.predictSession) sessions.push(this.predictSession);
    if (this.forwardSession) sessions.push(this.forwardSession.session);
    for (const e of this.compiled.values()) {
      if (e.backward) sessions.push(e.backward.session);
      if (e.fused) sessions.push(e.fused);
      if (e.primed) sessions.push(e.primed.session);
      if (e.leanForward) sessions.push(e.leanForward.session);
      if (e.windowedBackward) sessions.push(e.windowedBackward.session);
      if (e.primedWindowed) sessions.push(e.primedWindowed.session);
    }
    for (const v of this.fusedVariants.values()) sessions.push(v.session);
    this.compiled.clear();
    this.fusedVariants.clear();
    for (const s of sessions) void s.release();
  }
}

/** One image's forward pass: logits and cached tensors (NCHW, as ONNX Runtime returned them). */
export class OnnxForwardPass implements ForwardPass {
  readonly output: tf.Tensor;
  private readonly logits: Float32Array;
  private readonly views = new Map<string, tf.Tensor>();
  private disposed = false;

  /**
   * @param complete whether the cache holds everything a full forward pass caches; a lean pass
   *   (one layer's needs) fills the rest with one more forward run when another layer's
   *   activation is wanted (cacheActivations) or several layers are differentiated at once.
   */
  constructor(
    readonly adapter: OnnxModelAdapter,
    private readonly cache: Map<string, OrtTensor>,
    private complete = true,
  ) {
    const raw = cache.get(adapter.logitsName)?.data as Float32Array;
    this.logits = adapter.logitsNhwc(raw);
    const o = adapter.output;
    this.output =
      o.kind === 'map' ? tf.tensor4d(this.logits, [1, o.height, o.width, o.channels]) : tf.tensor2d(this.logits, [1, o.channels]);
  }

  /** The logits in the project's layout ([H, W, C] flattened). */
  get logitsData(): Float32Array {
    return this.logits;
  }

  activation(layer: string): tf.Tensor {
    this.check();
    const t = this.adapter.resolve(layer);
    let v = this.views.get(t);
    if (!v) {
      const c = this.cache.get(t);
      if (!c)
        throw new SegGradCamError(
          `the activation of '${layer}' is not cached by this pass (see the cacheLayers option): call cacheActivations first, or its gradient computes it`,
          'layer',
        );
      v = toNhwcTensor(c.data as Float32Array, c.dims);
      this.views.set(t, v);
    }
    return v;
  }

  /** Makes sure the layers' activations are cached (one more forward run on a lean pass). */
  async cacheActivations(layers: string[]): Promise<void> {
    this.check();
    if (this.complete || layers.every((l) => this.cache.has(this.adapter.resolve(l)))) return;
    await this.adapter.fillCache(this.cache);
    this.complete = true;
  }

  /** S for an objective at this pass's logits. */
  score(objective: Objective): number {
    return scoreOf(this.logits, objective, this.adapter.output);
  }

  private primed: { layer: string; objective: Objective; gradient: Float32Array } | null = null;

  /** @internal The gradient a primed forward run computed, handed out by the first matching `gradient` call. */
  prime(layer: string, objective: Objective, gradient: Float32Array): void {
    this.primed = { layer, objective, gradient };
  }

  async gradient(layer: string, objective: Objective): Promise<LayerGradient> {
    const p = this.primed;
    if (p && p.layer === layer && p.objective === objective) {
      this.primed = null;
      return this.layerGradient(this.adapter.resolve(layer), p.gradient, this.score(objective));
    }
    return (await this.gradientBatch(layer, [objective]))[0];
  }

  /**
   * A and ∂S_k/∂A for K objectives in one backward run (the cotangents stacked on the batch
   * axis). Graphs whose ops mix the batch axis fall back to one run per objective.
   */
  async gradientBatch(layer: string, objectives: Objective[]): Promise<LayerGradient[]> {
    this.check();
    if (objectives.length === 0) return [];
    const t = this.adapter.resolve(layer);
    const scored = objectives.map((o) => logitsCotangent(this.logits, o, this.adapter.output));
    const scores = scored.map((s) => s.score);
    const grads = await this.adapter.runGradient(
      t,
      this.cache,
      scored.map((s) => s.cotangent),
    );
    const a = this.cache.get(t) as OrtTensor;
    const dims = [...a.dims];
    const size = dims.reduce((x, y) => x * y, 1);
    const activations = toNhwcTensor(a.data as Float32Array, dims) as tf.Tensor4D;
    return scores.map((score, i) => ({
      activations: i === 0 ? activations : activations.clone(),
      gradients: toNhwcTensor(grads.subarray(i * size, (i + 1) * size), dims) as tf.Tensor4D,
      score,
    }));
  }

  /**
   * A and ∂S/∂A at several layers in one backward run, from the layer every other one is
   * downstream of (or from the input); one run per layer when there is no such run or the pass
   * did not cache what it reads.
   */
  async gradientLayers(layers: string[], objective: Objective): Promise<LayerGradient[]> {
    this.check();
    const tensors = layers.map((l) => this.adapter.resolve(l));
    const unique = [...new Set(tensors)];
    if (unique.length > 1) await this.cacheActivations(unique);
    const root = unique.length > 1 && unique.every((t) => this.cache.has(t)) ? this.adapter.rootOf(unique) : null;
    const { cotangent, score } = logitsCotangent(this.logits, objective, this.adapter.output);
    const also = unique.filter((t) => t !== root);
    const grads = root ? await this.adapter.runGradientLayers(root, also, this.cache, cotangent) : null;
    if (!root || !grads) {
      const out: LayerGradient[] = [];
      for (const layer of layers) out.push(await this.gradient(layer, objective));
      return out;
    }
    const byTensor = new Map<string, Float32Array>([[root, grads[0]], ...also.map((t, i): [string, Float32Array] => [t, grads[i + 1]])]);
    return tensors.map((t) => this.layerGradient(t, byTensor.get(t) as Float32Array, score));
  }

  /** A and ∂S/∂A as NHWC tensors for a cached tensor and its gradient (NCHW data). */
  private layerGradient(t: string, gradient: Float32Array, score: number): LayerGradient {
    const a = this.cache.get(t) as OrtTensor;
    return {
      activations: toNhwcTensor(a.data as Float32Array, a.dims) as tf.Tensor4D,
      gradients: toNhwcTensor(gradient, a.dims) as tf.Tensor4D,
      score,
    };
  }

  private check() {
    if (this.disposed) throw new Error('this forward pass has been disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.output.dispose();
    for (const v of this.views.values()) v.dispose();
    this.views.clear();
    this.cache.clear();
  }
}

/** The box holding every cotangent's support (null: all are zero). */
function unionSupport(cotangents: Cotangent[]): GridBox | null {
  let box: GridBox | null = null;
  for (const { support: s } of cotangents) if (s) box = box ? unionBox(box, s) : s;
  return box;
}

function toNhwcTensor(data: Float32Array, dims: readonly number[]): tf.Tensor {
  if (dims.length !== 4) return tf.tensor(Float32Array.from(data), [...dims]);
  const [n, c, h, w] = dims;
  return tf.tensor4d(nchwToNhwc(data, n, c, h, w), [n, h, w, c]);
}

/** A tensor as a graph output (type and shape from the analysis). */
const outputOf = (name: string, an: GraphAnalysis) => valueInfo(name, an.dataType(name) ?? DataType.FLOAT, an.shape(name));

/** The model with exactly these outputs. */
function withOutputs(model: ModelProto, names: string[], an: GraphAnalysis): ModelProto {
  return { ...model, graph: { ...model.graph, output: names.map((n) => outputOf(n, an)) } };
}

/** The model with one more output, unless it is one already. */
function withOutput(model: ModelProto, name: string, an: GraphAnalysis): ModelProto {
  if (model.graph.output.some((o) => o.name === name)) return model;
  return { ...model, graph: { ...model.graph, output: [...model.graph.output, outputOf(name, an)] } };
}
