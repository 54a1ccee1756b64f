/**
 * ONNX models explained through ONNX Runtime. Browser-safe: the runtime module is passed in
 * (`onnxruntime-node` in Node — see ./node.ts —, `onnxruntime-web` in the browser).
 *
 * ONNX Runtime has no autodiff, so gradients come from graphs the project compiles
 * (./gradient.ts). Sessions per model (./sessions.ts):
 *  - predict: the model as is;
 *  - forward: the model with every layer's output and every tensor a backward pass reads
 *    exposed as outputs (one run caches all of them);
 *  - per layer L (compiled on first use, least recently used released): the backward-only graph
 *    (cached tensors + cotangent → ∂S/∂A), and the fused forward + backward graph
 *    (input + cotangent → A, ∂S/∂A, logits) used when the pass did not cache what the backward
 *    part reads, and for input gradients of image batches.
 *
 * This file loads the model (parse, shape probe) and offers the engine's capabilities; forward
 * runs (the caching pass, the lean pass, the primed runs that take a gradient too) are
 * ./forward-runs.ts, the pass they make ./forward-pass.ts, and backward runs on a pass's cache
 * ./backward-runs.ts.
 *
 * Layout: ONNX tensors are NCHW; everything returned to the project is NHWC ([1, h, w, c]), and
 * objective weights arrive as [H, W, C] — see ./layout.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import { SegGradCamError } from '../../errors.js';
import {
  INPUT_LAYER,
  type BatchGradient,
  type GradientPrime,
  type LayerInfo,
  type ModelAdapter,
  type Objective,
  type OutputInfo,
} from '../contract.js';
import type { LayerLink } from '../bottleneck.js';
import { unknownLayer } from '../errors.js';
import { readOutputInfo } from '../tfjs/output-info.js';
import { GraphAnalysis } from './analysis.js';
import { BackwardRuns } from './backward-runs.js';
import { ForwardRuns } from './forward-runs.js';
import { attrInt } from './builder.js';
import { COTANGENT, GRADIENT, type GradientGraph } from './gradient.js';
import { scoreOf, sigmoidProbabilities, weightsCotangent, type Cotangent } from './cotangent.js';
import { OnnxForwardPass } from './forward-pass.js';
import { nchwToNhwc, nhwcToNchw, toNhwcShape } from './layout.js';
import { DEFAULT_SESSION_OPTIONS, type OnnxAdapterOptions, type OrtRuntime } from './options.js';
import { DataType, decodeModel, defaultOpset, type ModelProto } from './proto.js';
import { OnnxSessions } from './sessions.js';
import { probeShapes } from './probe.js';
import { onnxHeadKernel } from './cam.js';
import { ReplacedScores } from './replaced-scores.js';
import { onnxRelevance } from './lrp.js';
import type { RelevanceOptions } from '../contract.js';
import type { BiasGradients } from '../contract.js';
import { biasDecomposition, guidedInputGradient } from '../tfjs/hooks.js';
import { onnxHookedRun } from './hooked.js';
import { withTokenViews } from './tokens.js';
import { PREDICT_OUTPUT, activationBehind, predictModel, prepareModel } from './prepare.js';

export { DEFAULT_SESSION_OPTIONS, OnnxForwardPass, type OnnxAdapterOptions, type OrtRuntime };

export class OnnxModelAdapter implements ModelAdapter {
  readonly kind = 'onnx';
  get runtime(): string {
    return this.ort.name ?? 'onnxruntime';
  }
  readonly maxBatch = 1;
  readonly input: { height: number; width: number; channels: number };
  readonly output: OutputInfo;
  /** The tensor read as logits: the model output, or the input of a final Softmax/Sigmoid. */
  readonly logitsName: string;
  readonly inputName: string;
  /** NCHW input dims. */
  readonly inputDims: number[];
  private readonly layerList: LayerInfo[];
  /** What the explained graph is when it is not the file as is (float16 widened, quantised read straight-through): one sentence each. */
  readonly notes: string[];
  private readonly sessions: OnnxSessions;
  private readonly backward: BackwardRuns;
  private readonly forwardRunner: ForwardRuns;
  private disposed = false;

  private constructor(
    readonly ort: OrtRuntime,
    readonly model: ModelProto,
    readonly analysis: GraphAnalysis,
    private readonly options: OnnxAdapterOptions,
    activation: OutputInfo['activation'],
    logitsName: string,
    file: ModelProto = model,
    notes: string[] = [],
  ) {
    this.notes = notes;
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
    this.sessions = new OnnxSessions(
      ort,
      model,
      analysis,
      options,
      logitsName,
      this.inputName,
      this.layerList.map((l) => l.name),
      (layer) => this.resolve(layer),
      file === model
        ? [predictModel(file, logitsName, analysis)]
        : [predictModel(file, logitsName, analysis), predictModel(model, logitsName, analysis)],
    );
    this.backward = new BackwardRuns(ort, analysis, options, logitsName, this.inputName, this.sessions);
    this.forwardRunner = new ForwardRuns(this, options, this.sessions, this.backward, (res, names, x, complete) =>
      this.passFrom(res, names, x, complete),
    );
  }

  /** Loads a model from .onnx bytes: parses it and runs the shape probe. */
  static async create(bytes: Uint8Array, ort: OrtRuntime, options: OnnxAdapterOptions = {}): Promise<OnnxModelAdapter> {
    const { file, model, notes } = prepareModel(decodeModel(bytes));
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

    // Shapes, types, shape-arithmetic values: ONNX Runtime's shape inference, or one probe run.
    const probe = await probeShapes(ort, model, input.name, nchw, options.shapes);
    // Token layers ([1, N, C]) get an in-line grid view (./tokens.ts).
    const viewed = withTokenViews(model, probe, { inputName: input.name, outputName, grid: options.grid });
    const analysis = new GraphAnalysis(viewed.model, viewed.probe, { inputName: input.name, outputName, opset });

    let activation: OutputInfo['activation'] = 'none';
    let logits = outputName;
    // A final Sigmoid/Softmax behind Cast/Identity/Reshape nodes (a float16 model's output Cast) is still the activation.
    const last = activationBehind(analysis, outputName);
    const rank = last ? analysis.shape(last.output[0]).length : 0;
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
    return new OnnxModelAdapter(ort, viewed.model, analysis, options, activation, logits, file, notes);
  }

  layers(): LayerInfo[] {
    return this.layerList.map((l) => ({ ...l, outputShape: [...l.outputShape] }));
  }

  /** How each layer is computed from the nearest other layers (for the bottleneck choice, ../bottleneck.ts). */
  layerLinks(): Map<string, LayerLink[]> {
    return this.analysis.layerLinks(this.layerList.map((l) => l.name));
  }

  /** The graph tensor behind a layer name (INPUT_LAYER and the input's own name give the input). */
  resolve(layer: string): string {
    if (layer === INPUT_LAYER || layer === this.inputName) return this.inputName;
    if (this.layerList.some((l) => l.name === layer)) return layer;
    const an = this.analysis;
    if (an.producer.has(layer) && an.dataDependent.has(layer) && an.isFloat(layer) && an.shape(layer).length === 4) return layer;
    throw unknownLayer(layer, [{ name: INPUT_LAYER, type: 'Input', outputShape: toNhwcShape(this.inputDims) }, ...this.layerList]);
  }

  private check() {
    if (this.disposed) throw new Error('this ONNX adapter has been disposed');
  }

  /** The compiled gradient graph for a layer (built once, least recently used released). */
  gradientGraph(layer: string): GradientGraph {
    return this.sessions.entry(this.resolve(layer)).graph;
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
    const session = await this.sessions.predict();
    const res = await session.run({ [this.inputName]: this.inputTensor(input) });
    return res[PREDICT_OUTPUT].data as Float32Array;
  }

  /** The logits predictions are read from (NHWC), from one run of the predict session (the file as shipped); nothing cached. */
  async predictOutput(input: tf.Tensor4D): Promise<tf.Tensor> {
    this.check();
    const session = await this.sessions.predict();
    const res = await session.run({ [this.inputName]: this.inputTensor(input) });
    const v = this.logitsNhwc(res[PREDICT_OUTPUT].data as Float32Array);
    const o = this.output;
    return o.kind === 'map' ? tf.tensor4d(v, [1, o.height, o.width, o.channels]) : tf.tensor2d(v, [1, o.channels]);
  }

  async forward(input: tf.Tensor4D, prime?: GradientPrime): Promise<OnnxForwardPass> {
    this.check();
    const x = this.inputTensor(input);
    const pass = await this.forwardRunner.run(x, prime);
    // A graph that differs numerically from the file (float16 widened, quantised read
    // straight-through: `notes`): labels come from the file as ONNX Runtime runs it, so a
    // prediction equals ONNX Runtime's on every pixel; gradients stay those of the explained graph.
    if (this.notes.length > 0) {
      try {
        const session = await this.sessions.predict();
        const res = await session.run({ [this.inputName]: x });
        pass.setPredictionLogits(res[PREDICT_OUTPUT].data as Float32Array);
      } catch (err) {
        pass.dispose();
        throw err;
      }
    }
    return pass;
  }

  private passFrom(res: InferenceSession.OnnxValueMapType, names: string[], x: OrtTensor, complete: boolean): OnnxForwardPass {
    const cache = new Map<string, OrtTensor>(names.map((n) => [n, res[n] as OrtTensor]));
    cache.set(this.inputName, x);
    return new OnnxForwardPass(this, cache, complete);
  }

  /** @internal Adds everything a full forward pass caches to a pass's cache (one forward run). */
  async fillCache(cache: Map<string, OrtTensor>): Promise<void> {
    this.check();
    const { session, names } = await this.sessions.forward();
    const res = await session.run({ [this.inputName]: cache.get(this.inputName) as OrtTensor });
    for (const n of names) if (!cache.has(n)) cache.set(n, res[n] as OrtTensor);
  }

  /** @internal Runs ∂S/∂A for K cotangents of one pass (the gradients NCHW, stacked). */
  async runGradient(tensor: string, cache: Map<string, OrtTensor>, cotangents: Cotangent[]): Promise<Float32Array> {
    this.check();
    return this.backward.runGradient(tensor, cache, cotangents);
  }

  /**
   * @internal The tensor among `tensors` (or the input) from which every other one is on the
   * path to the logits — one backward run from it passes them all; null when there is none.
   */
  rootOf(tensors: string[]): string | null {
    return this.backward.rootOf(tensors);
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
    return this.backward.runGradientLayers(root, also, cache, cotangent);
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
    const probability = sigmoidProbabilities(this.output) ? 'sigmoid' : 'softmax';
    const { session } = await this.sessions.fusedVariant(this.inputName, objective.on, probability);
    const cot = this.backward.cotangentTensor([weightsCotangent(objective, this.output)]);
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

  /** @internal Logits NCHW → the project's layout. */
  logitsNhwc(nchw: Float32Array): Float32Array {
    const d = this.analysis.shape(this.logitsName);
    return d.length === 4 ? nchwToNhwc(nchw, d[0], d[1], d[2], d[3]) : nchw;
  }

  /** @internal Objective weights ([H, W, C]) as an NCHW cotangent. */
  cotangentNchw(weightsNhwc: Float32Array): Float32Array {
    return this.backward.cotangentTensor([weightsCotangent({ weights: weightsNhwc, on: 'logits', offset: 0 }, this.output)])
      .data as Float32Array;
  }

  /** CAM's head kernel (see ./cam.ts). */
  headKernel(layer: LayerInfo): tf.Tensor2D {
    return onnxHeadKernel(this.analysis, this.logitsName, layer);
  }

  private replacedRuns?: ReplacedScores;

  /** LRP over the ONNX graph's nodes, run in TF.js (see ./lrp.ts). */
  relevance(input: tf.Tensor4D, objective: Objective, options: RelevanceOptions): tf.Tensor4D {
    this.check();
    return onnxRelevance(this.analysis, this.logitsName, input, objective, options);
  }

  /** Guided backpropagation, the graph run in TF.js with guided ReLUs (see ./hooked.ts). */
  guidedGradient(input: tf.Tensor4D, objective: Objective): tf.Tensor4D {
    this.check();
    return guidedInputGradient(onnxHookedRun(this.analysis, this.logitsName, 'guided backpropagation'), input, objective, this.output);
  }

  /** FullGrad's input and bias gradients, the graph run in TF.js (see ./hooked.ts). */
  biasGradients(input: tf.Tensor4D, objective: Objective): BiasGradients {
    this.check();
    const run = onnxHookedRun(this.analysis, this.logitsName, 'FullGrad');
    return biasDecomposition(run, input, objective, this.output, (t) => (t.rank === 4 ? tf.transpose(t, [0, 2, 3, 1]) : t));
  }

  /** @internal S for B replacements ([B, h, w, K]) of a layer's output, `x` being the pass's input (see ./replaced-scores.ts). */
  async replacedScores(layer: string, x: OrtTensor, activations: tf.Tensor4D, objective: Objective): Promise<Float32Array> {
    this.check();
    this.replacedRuns ??= new ReplacedScores(
      this.ort,
      this.model,
      this.analysis,
      this.inputName,
      this.logitsName,
      this.output,
      this.options.sessionOptions,
    );
    return this.replacedRuns.scores(this.resolve(layer), x, (await activations.data()) as Float32Array, activations.shape[0], objective);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.replacedRuns?.release();
    this.sessions.release();
  }
}
