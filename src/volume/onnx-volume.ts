/**
 * 3-D ONNX models ([1, C, D, H, W] in, [1, K, d, h, w] logits out) through ONNX Runtime, with
 * gradients from the same compiled gradient graphs as 2-D (../engine/onnx/gradient.ts: one record
 * per op, every record rank-generic). The 2-D adapter (../engine/onnx/adapter.ts) speaks the
 * project's NHWC image contract; volumes stay in the ONNX layout (channels first) end to end, so
 * nothing here converts layouts: a region is a [d, h, w] mask, a CAM a [d, h, w] volume.
 *
 * One fused session per layer: input + cotangent → logits, A, ∂S/∂A (one run per explanation;
 * a predict session for plain inference).
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import { SegGradCamError } from '../errors.js';
import { GraphAnalysis } from '../engine/onnx/analysis.js';
import { attrInt, valueInfo } from '../engine/onnx/builder.js';
import { probeShapes } from '../engine/onnx/probe.js';
import { ACTIVATION, COTANGENT, GRADIENT, buildGradientGraph } from '../engine/onnx/gradient.js';
import { DEFAULT_SESSION_OPTIONS, type OrtRuntime } from '../engine/onnx/options.js';
import { DataType, decodeModel, defaultOpset, encodeModel, type ModelProto } from '../engine/onnx/proto.js';

/** A layer of a volume model: a 5-D float tensor [1, C, d, h, w] on the way to the logits. */
export interface VolumeLayer {
  name: string;
  type: string;
  shape: number[];
}

/** A and ∂S/∂A ([1, C, d, h, w], channels first) and the logits of one fused run. */
export interface VolumeGradient {
  activations: Float32Array;
  gradients: Float32Array;
  /** Shape of A. */
  shape: number[];
  logits: Float32Array;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * The output a volume model is explained at: the one named, else the 5-D output with the most
 * voxels (the first of ties) — the full-resolution head of a deep-supervision network, whose other
 * outputs are the same segmentation at ½, ¼, … resolution.
 */
export function chooseOutput(names: string[], dims: (name: string) => readonly number[], wanted?: string): string {
  if (wanted !== undefined) {
    if (!names.includes(wanted))
      throw new SegGradCamError(`the model has no output '${wanted}'; its outputs: ${names.join(', ')}`, 'model');
    return wanted;
  }
  let best = names[0];
  let most = -1;
  for (const n of names) {
    const d = dims(n);
    if (d.length !== 5) continue;
    const v = d[2] * d[3] * d[4];
    if (v > most) {
      most = v;
      best = n;
    }
  }
  return best;
}

export class OnnxVolumeModel {
  readonly inputName: string;
  /** [1, C, D, H, W]. */
  readonly inputDims: number[];
  /** The tensor read as logits (the model output, or the input of a final channel Softmax/Sigmoid). */
  readonly logitsName: string;
  /** [1, K, d, h, w]. */
  readonly logitsDims: number[];
  readonly activation: 'softmax' | 'sigmoid' | 'none';
  private readonly layerList: VolumeLayer[];
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  private constructor(
    readonly ort: OrtRuntime,
    readonly analysis: GraphAnalysis,
    logitsName: string,
    activation: 'softmax' | 'sigmoid' | 'none',
    private readonly sessionOptions: InferenceSession.SessionOptions,
  ) {
    this.inputName = analysis.inputName;
    this.inputDims = analysis.shape(this.inputName);
    this.logitsName = logitsName;
    this.logitsDims = analysis.shape(logitsName);
    this.activation = activation;
    const ancestors = analysis.ancestors(logitsName);
    this.layerList = [];
    for (const n of analysis.nodes) {
      for (const o of n.output) {
        if (!o || !analysis.dataDependent.has(o) || !analysis.isFloat(o) || !ancestors.has(o)) continue;
        if (analysis.probe.get(o)?.dims.length !== 5) continue;
        if (o !== logitsName && analysis.isChainPrefix(o)) continue;
        this.layerList.push({ name: o, type: n.opType, shape: analysis.shape(o) });
      }
    }
  }

  /** Parses a .onnx model with one 5-D input and runs one shape probe (every node output exposed). */
  static async create(
    bytes: Uint8Array,
    ort: OrtRuntime,
    options: {
      sessionOptions?: InferenceSession.SessionOptions;
      depth?: number;
      height?: number;
      width?: number;
      /** The output to explain (default: the 5-D output with the most voxels, the first of ties: the full-resolution one of a deep-supervision net). */
      output?: string;
    } = {},
  ): Promise<OnnxVolumeModel> {
    const model = decodeModel(bytes);
    const opset = defaultOpset(model);
    const g = model.graph;
    const inits = new Set(g.initializer.map((t) => t.name));
    const inputs = g.input.filter((i) => !inits.has(i.name));
    if (inputs.length !== 1) throw new SegGradCamError(`unsupported volume model: expected one input, got ${inputs.length}`, 'model');
    const input = inputs[0];
    const tt = input.type?.tensorType;
    if (tt?.elemType !== DataType.FLOAT) throw new SegGradCamError(`unsupported model: input '${input.name}' is not float32`, 'model');
    const dims = tt.shape?.dim ?? [];
    if (dims.length !== 5)
      throw new SegGradCamError(
        `not a volume model: its input has rank ${dims.length}, expected [batch, channels, depth, height, width]`,
        'model',
      );
    const given = [undefined, undefined, options.depth, options.height, options.width];
    const what = ['batch', 'channel count', 'depth', 'height', 'width'];
    const ncdhw = dims.map((d, i) => {
      const v = d.dimValue != null ? Number(d.dimValue) : 0;
      if (i === 0) {
        if (v > 1) throw new SegGradCamError(`unsupported model: input batch is fixed at ${v}`, 'model');
        return 1;
      }
      if (v > 0) {
        if (given[i] != null && given[i] !== v)
          throw new SegGradCamError(`the model's input ${what[i]} is fixed at ${v}, not ${given[i]}`, 'shape');
        return v;
      }
      const gv = given[i];
      if (gv == null)
        throw new SegGradCamError(`the model's input ${what[i]} is free ('${d.dimParam ?? '?'}'): give the ${what[i]} to use`, 'shape');
      return gv;
    });
    if (g.output.length === 0) throw new SegGradCamError('the model has no output', 'model');
    const probe = await probeShapes(ort, model, input.name, ncdhw);
    const outputName = chooseOutput(
      g.output.map((o) => o.name),
      (name) => probe.get(name)?.dims ?? [],
      options.output,
    );
    const analysis = new GraphAnalysis(model, probe, { inputName: input.name, outputName, opset });
    if (analysis.shape(outputName).length !== 5)
      throw new SegGradCamError(
        `not a volume segmentation model: its output has rank ${analysis.shape(outputName).length}, expected 5`,
        'model',
      );
    let activation: 'softmax' | 'sigmoid' | 'none' = 'none';
    let logits = outputName;
    const last = analysis.producer.get(outputName);
    if (last?.opType === 'Sigmoid') {
      activation = 'sigmoid';
      logits = last.input[0];
    } else if (last?.opType === 'Softmax') {
      let axis = attrInt(last, 'axis', opset >= 13 ? -1 : 1);
      if (axis < 0) axis += 5;
      if (axis === 1 && opset >= 13) {
        activation = 'softmax';
        logits = last.input[0];
      }
    }
    return new OnnxVolumeModel(ort, analysis, logits, activation, options.sessionOptions ?? DEFAULT_SESSION_OPTIONS);
  }

  /** The explainable layers in execution order (5-D float outputs on the way to the logits). */
  layers(): VolumeLayer[] {
    return this.layerList.map((l) => ({ ...l, shape: [...l.shape] }));
  }

  /** The layer a name means (a layer of layers(), any 5-D data-dependent float tensor of the graph, or 'input' for the model input). */
  resolve(layer: string): string {
    if (layer === 'input' || layer === this.inputName) return this.inputName;
    if (this.layerList.some((l) => l.name === layer)) return layer;
    const an = this.analysis;
    if (an.producer.has(layer) && an.dataDependent.has(layer) && an.isFloat(layer) && an.shape(layer).length === 5) return layer;
    const names = this.layerList.map((l) => l.name);
    throw new SegGradCamError(`unknown layer '${layer}'; the model's volume layers: ${names.join(', ')}`, 'layer');
  }

  private session(key: string, build: () => ModelProto): Promise<InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = this.ort.InferenceSession.create(encodeModel(build()), this.sessionOptions);
      this.sessions.set(key, s);
    }
    return s;
  }

  private inputTensor(x: Float32Array): OrtTensor {
    if (x.length !== prod(this.inputDims))
      throw new SegGradCamError(`a volume of ${x.length} values does not fit the model's input [${this.inputDims.join(', ')}]`, 'shape');
    return new this.ort.Tensor('float32', x, this.inputDims);
  }

  /** The logits [1, K, d, h, w] of one input [1, C, D, H, W]. */
  async predict(x: Float32Array): Promise<Float32Array> {
    const session = await this.session('predict', () => this.analysis.model);
    const res = await session.run({ [this.inputName]: this.inputTensor(x) });
    return res[this.logitsName].data as Float32Array;
  }

  /**
   * A and ∂S/∂A at `layer` for S = Σ cotangent · logits (the cotangent [1, K, d, h, w]: region
   * mask × class one-hot), with the logits, in one run.
   */
  async gradient(x: Float32Array, layer: string, cotangent: Float32Array): Promise<VolumeGradient> {
    const t = this.resolve(layer);
    if (cotangent.length !== prod(this.logitsDims))
      throw new SegGradCamError(
        `a cotangent of ${cotangent.length} values does not fit the logits [${this.logitsDims.join(', ')}]`,
        'shape',
      );
    const session = await this.session(`grad:${t}`, () => buildGradientGraph(this.analysis, t, this.logitsName).model);
    const res = await session.run({
      [this.inputName]: this.inputTensor(x),
      [COTANGENT]: new this.ort.Tensor('float32', cotangent, this.logitsDims),
    });
    // ONNX Runtime's outputs are fresh arrays of this run (as the 2-D adapter relies on): no copies.
    return {
      activations: res[ACTIVATION].data as Float32Array,
      gradients: res[GRADIENT].data as Float32Array,
      shape: [...res[ACTIVATION].dims],
      logits: res[this.logitsName].data as Float32Array,
    };
  }

  /**
   * The logits [1, K, d, h, w] when `layer` takes the value `replacement` ([1, C, d, h, w]) instead of
   * what its producer computes from `x` (Ablation-CAM's "forward from a modified activation"): a
   * session per layer whose inputs are the model input and the layer, its producer writing to an
   * unused name. Every other tensor (the skips) is computed from `x` as in a plain forward.
   */
  async predictReplaced(x: Float32Array, layer: string, replacement: Float32Array): Promise<Float32Array> {
    const t = this.resolve(layer);
    if (t === this.inputName) return this.predict(replacement);
    const dims = this.analysis.shape(t);
    if (replacement.length !== prod(dims))
      throw new SegGradCamError(`a replacement of ${replacement.length} values does not fit '${t}' [${dims.join(', ')}]`, 'shape');
    if (t === this.logitsName) return Float32Array.from(replacement);
    const session = await this.session(`replaced:${t}`, () => this.replacedModel(t));
    const res = await session.run({ [this.inputName]: this.inputTensor(x), [t]: new this.ort.Tensor('float32', replacement, dims) });
    return Float32Array.from(res[this.logitsName].data as Float32Array);
  }

  /** The model with `tensor` as a second input (its producer writes elsewhere) and the logits as the one output. */
  private replacedModel(tensor: string): ModelProto {
    const model = this.analysis.model;
    const g = model.graph;
    const producer = this.analysis.producer.get(tensor);
    const node = g.node.map((n) =>
      n === producer ? { ...n, output: n.output.map((o) => (o === tensor ? `${tensor}/sgc_replaced` : o)) } : n,
    );
    return {
      ...model,
      graph: {
        ...g,
        node,
        input: [...g.input, valueInfo(tensor, DataType.FLOAT, this.analysis.shape(tensor))],
        output: [valueInfo(this.logitsName, DataType.FLOAT, this.logitsDims)],
        valueInfo: [],
      },
    };
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}
