/**
 * The ONNX Runtime sessions of one model, compiled on first use and kept (see ./adapter.ts for
 * what each is for): predict, forward (caching every layer and what backward passes read), and
 * per layer (least recently used released) the backward-only graph, its windowed variant, the
 * fused forward + backward graph, the primed graphs (forward, cache and gradient in one run) and
 * the lean forward pass; per layer and score kind the fused graph for batches of images.
 */
import type { InferenceSession } from 'onnxruntime-common';
import type { Objective } from '../contract.js';
import type { GraphAnalysis } from './analysis.js';
import { valueInfo } from './builder.js';
import { GRADIENT, backwardGraph, buildGradientGraph, type GradientGraph } from './gradient.js';
import { DEFAULT_CACHE_BYTES, DEFAULT_SESSION_OPTIONS, type OnnxAdapterOptions, type OrtRuntime } from './options.js';
import { DataType, encodeModel, type ModelProto } from './proto.js';
import { runtimeError } from './prepare.js';
import { seededModel, type SeedKind } from './seed.js';
import { isEarlyOutput } from './early.js';
import { scaleKey, windowedGradientGraph, type WindowInput, type WindowPlan } from './window.js';

export interface Compiled {
  graph: GradientGraph;
  backward?: { session: InferenceSession; inputs: string[] };
  fused?: InferenceSession;
  /**
   * The fused graphs that also output what a forward pass caches (a primed first explanation),
   * by kind: the backward part whole or windowed, the cotangent fed or computed in the graph
   * (./seed.ts).
   */
  primed?: Map<string, PrimedSession>;
  /** The forward pass caching only the layer and what its backward part reads. */
  leanForward?: { session: InferenceSession; names: string[] };
  /** How the backward part runs on a window (null: it cannot). */
  plan?: WindowPlan | null;
  windowedBackward?: { session: InferenceSession; inputs: string[]; windowInputs: WindowInput[] };
  /** Whether passes keep what the backward part reads (it fits the cacheBytes budget). */
  keepSaved?: boolean;
}

export interface PrimedSession {
  session: InferenceSession;
  /** The forward tensors it outputs (the pass's cache). */
  names: string[];
  windowInputs: WindowInput[];
}

export class OnnxSessions {
  private readonly compiled = new Map<string, Compiled>();
  private readonly fusedVariants = new Map<string, { graph: GradientGraph; session: InferenceSession }>();
  private predictSession: InferenceSession | null = null;
  private forwardSession: { session: InferenceSession; names: string[] } | null = null;

  /**
   * @param layers the model's layers (a full forward pass caches them all)
   * @param resolve the graph tensor behind a layer name (for the cacheLayers option)
   */
  constructor(
    private readonly ort: OrtRuntime,
    private readonly model: ModelProto,
    private readonly analysis: GraphAnalysis,
    private readonly options: OnnxAdapterOptions,
    private readonly logitsName: string,
    private readonly inputName: string,
    private readonly layers: string[],
    private readonly resolve: (layer: string) => string,
    /**
     * The models `predict` runs, the first ONNX Runtime accepts (the file as is, then the explained
     * graph: a bfloat16 file whose ops ONNX Runtime's CPU kernels lack); default: the logits of `model`.
     */
    private readonly predictModels: ModelProto[] = [],
  ) {}

  private sessionOptions(): InferenceSession.SessionOptions {
    return { ...DEFAULT_SESSION_OPTIONS, ...this.options.sessionOptions };
  }

  /** Sessions being created, by owner (the sessions object or a layer's entry) and slot. */
  private readonly creating = new WeakMap<object, Map<string, Promise<InferenceSession>>>();

  /**
   * A new session for `model`. Concurrent first uses of one slot (owner + slot name) share one
   * creation: each call used to create its own and keep only the last, leaking the others.
   */
  create(model: ModelProto, owner: object, slot: string, noArena = false): Promise<InferenceSession> {
    let slots = this.creating.get(owner);
    if (!slots) this.creating.set(owner, (slots = new Map()));
    const known = slots.get(slot);
    if (known) return known;
    // ONNX Runtime's refusals (a type clash, an op it lacks) become typed 'model' errors naming the node.
    const options = this.sessionOptions();
    // An arena keeps a session's peak for the session's life, and one explanation may run two
    // sessions (a lean forward pass, then the fused graph): past cacheBytes the lean forward runs
    // without one so its memory goes back before the fused run. The fused and primed sessions keep
    // theirs: without it their runs took 2.2x as long at 1024² (docs/onnx.md).
    if (noArena && this.options.sessionOptions?.enableCpuMemArena === undefined) options.enableCpuMemArena = false;
    const made = this.ort.InferenceSession.create(encodeModel(model), options).catch((e: unknown) => {
      throw runtimeError(e, `compiling the ${slot} graph`);
    });
    const pending = slots;
    pending.set(slot, made);
    // Kept once made (the slot then holds that very session); a failed creation may be retried.
    void made.catch(() => pending.delete(slot));
    return made;
  }

  entry(tensor: string, also: string[] = []): Compiled {
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
      for (const p of old.primed?.values() ?? []) void p.session.release();
      void old.leanForward?.session.release();
      void old.windowedBackward?.session.release();
    }
    return e;
  }

  async backward(e: Compiled): Promise<{ session: InferenceSession; inputs: string[] }> {
    if (!e.backward) {
      const { model, inputs } = backwardGraph(this.analysis, e.graph);
      e.backward = { session: await this.create(model, e, 'backward'), inputs };
    }
    return e.backward;
  }

  /**
   * The layer's fused graph with the logits and what a forward pass caches as outputs too: all of
   * it, or (lean) only the layer and what its backward part reads; its backward part whole or on
   * windows; its cotangent fed, or computed in the graph from the logits (`seed`, ./seed.ts).
   */
  async primed(e: Compiled, lean: boolean, windowed: boolean, seed?: SeedKind): Promise<PrimedSession> {
    const slot = `${windowed ? 'windowed' : 'whole'}|${seed ?? 'fed'}`;
    e.primed ??= new Map();
    const known = e.primed.get(slot);
    if (known) return known;
    const names = lean
      ? this.leanNames(e)
      : [...new Set([...this.cacheNames(), e.graph.layer, ...e.graph.saved])].filter((n) => n !== this.inputName);
    const gg = windowed ? this.windowedGraph(e) : { ...e.graph, windowInputs: [] };
    const graph = gg.model.graph;
    const extra = graph.output.filter((o) => o.name === GRADIENT || isEarlyOutput(o.name));
    const primed = { ...gg.model, graph: { ...graph, output: [...names.map((n) => outputOf(n, this.analysis)), ...extra] } };
    // A windowed graph's cotangent is its scale-1 window of the logits' grid.
    const crop = (end: 'starts' | 'ends') =>
      gg.windowInputs.find((w) => 'scale' in w && w.scale === scaleKey([1, 1]) && w.end === end)?.name as string;
    const model = seed
      ? seededModel(
          primed,
          e.graph.firstBackward,
          this.logitsName,
          this.analysis.shape(this.logitsName),
          seed,
          windowed ? [crop('starts'), crop('ends')] : undefined,
        )
      : primed;
    const made = { session: await this.create(model, e, `primed ${slot}`), names, windowInputs: gg.windowInputs };
    e.primed.set(slot, made);
    return made;
  }

  async windowedBackward(e: Compiled): Promise<{ session: InferenceSession; inputs: string[]; windowInputs: WindowInput[] }> {
    if (!e.windowedBackward) {
      const wg = this.windowedGraph(e);
      const { model, inputs } = backwardGraph(this.analysis, wg);
      e.windowedBackward = { session: await this.create(model, e, 'windowedBackward'), inputs, windowInputs: wg.windowInputs };
    }
    return e.windowedBackward;
  }

  private windowedGraph(e: Compiled) {
    return windowedGradientGraph(this.analysis, e.graph.layer, e.plan as WindowPlan, { saveOutputs: true, alsoLayers: e.graph.alsoLayers });
  }

  /** Whether a pass keeps what the layer's backward part reads: only when it fits the cacheBytes budget. */
  keepsSaved(e: Compiled): boolean {
    e.keepSaved ??= bytesOf(e.graph.saved, this.analysis) <= (this.options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    return e.keepSaved;
  }

  /** The logits, the layer and (within the cacheBytes budget) what its backward part reads. */
  private leanNames(e: Compiled): string[] {
    const saved = this.keepsSaved(e) ? e.graph.saved : [];
    return [...new Set([this.logitsName, e.graph.layer, ...saved])].filter((n) => n !== this.inputName);
  }

  /** The forward pass that caches only `leanNames`. */
  async leanForward(e: Compiled): Promise<{ session: InferenceSession; names: string[] }> {
    if (!e.leanForward) {
      const names = this.leanNames(e);
      e.leanForward = {
        session: await this.create(withOutputs(this.model, names, this.analysis), e, 'leanForward', !this.keepsSaved(e)),
        names,
      };
    }
    return e.leanForward;
  }

  /** The fused forward + backward graph; it outputs what the backward part reads only within the cacheBytes budget. */
  async fused(e: Compiled): Promise<InferenceSession> {
    if (!e.fused) {
      const m = withOutput(e.graph.model, this.logitsName, this.analysis);
      const saved = new Set(this.keepsSaved(e) ? [] : e.graph.saved);
      const model = saved.size === 0 ? m : { ...m, graph: { ...m.graph, output: m.graph.output.filter((o) => !saved.has(o.name)) } };
      e.fused = await this.create(model, e, 'fused');
    }
    return e.fused;
  }

  /** The tensors a forward pass caches. */
  private cacheNames(): string[] {
    const want = this.options.cacheLayers ?? 'all';
    const names = new Set<string>();
    if (want === 'all') {
      for (const l of this.layers) names.add(l);
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

  async forward(): Promise<{ session: InferenceSession; names: string[] }> {
    if (!this.forwardSession) {
      const names = this.cacheNames();
      this.forwardSession = { session: await this.create(withOutputs(this.model, names, this.analysis), this, 'forward'), names };
    }
    return this.forwardSession;
  }

  /** The fused forward + backward session for a layer and score kind (used for batches of images). */
  async fusedVariant(
    tensor: string,
    on: Objective['on'],
    probability: 'softmax' | 'sigmoid',
  ): Promise<{ graph: GradientGraph; session: InferenceSession }> {
    const key = `${on}|${tensor}`;
    let v = this.fusedVariants.get(key);
    if (!v) {
      const graph = buildGradientGraph(this.analysis, tensor, this.logitsName, { on, probability });
      v = { graph, session: await this.create(withOutput(graph.model, this.logitsName, this.analysis), this, key) };
      this.fusedVariants.set(key, v);
    }
    return v;
  }

  /** The model as is, with the logits as its output. */
  async predict(): Promise<InferenceSession> {
    if (!this.predictSession) {
      const models = this.predictModels.length > 0 ? this.predictModels : [withOutputs(this.model, [this.logitsName], this.analysis)];
      let failure: unknown = null;
      for (const [i, m] of models.entries()) {
        try {
          this.predictSession = await this.create(m, this, `predict${i === 0 ? '' : ` (fallback ${i})`}`);
          break;
        } catch (e) {
          failure ??= e;
        }
      }
      if (!this.predictSession) throw failure;
    }
    return this.predictSession;
  }

  /** Releases every session. */
  release(): void {
    const sessions: InferenceSession[] = [];
    if (this.predictSession) sessions.push(this.predictSession);
    if (this.forwardSession) sessions.push(this.forwardSession.session);
    for (const e of this.compiled.values()) {
      if (e.backward) sessions.push(e.backward.session);
      if (e.fused) sessions.push(e.fused);
      for (const p of e.primed?.values() ?? []) sessions.push(p.session);
      if (e.leanForward) sessions.push(e.leanForward.session);
      if (e.windowedBackward) sessions.push(e.windowedBackward.session);
    }
    for (const v of this.fusedVariants.values()) sessions.push(v.session);
    this.compiled.clear();
    this.fusedVariants.clear();
    for (const s of sessions) void s.release();
  }
}

/** A tensor as a graph output (type and shape from the analysis). */
const outputOf = (name: string, an: GraphAnalysis) => valueInfo(name, an.dataType(name) ?? DataType.FLOAT, an.shape(name));

/** Bytes of these tensors (their shapes and element types from the analysis). */
function bytesOf(names: string[], an: GraphAnalysis): number {
  let sum = 0;
  for (const n of names) sum += an.shape(n).reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[an.dataType(n) ?? DataType.FLOAT] ?? 4);
  return sum;
}

const ELEMENT_BYTES: Record<number, number> = {
  [DataType.DOUBLE]: 8,
  [DataType.INT64]: 8,
  [DataType.UINT64]: 8,
  [DataType.FLOAT16]: 2,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.BOOL]: 1,
};

/** The model with exactly these outputs. */
function withOutputs(model: ModelProto, names: string[], an: GraphAnalysis): ModelProto {
  return { ...model, graph: { ...model.graph, output: names.map((n) => outputOf(n, an)) } };
}

/** The model with one more output, unless it is one already. */
function withOutput(model: ModelProto, name: string, an: GraphAnalysis): ModelProto {
  if (model.graph.output.some((o) => o.name === name)) return model;
  return { ...model, graph: { ...model.graph, output: [...model.graph.output, outputOf(name, an)] } };
}
