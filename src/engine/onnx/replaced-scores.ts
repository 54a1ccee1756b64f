/**
 * S for replacements of one tensor's value (`ForwardPass.scoresWithActivations` of the ONNX engine, for
 * AblationCAM): a session per tensor whose inputs are the model input and the replacement, the producer of the
 * tensor writing to an unused name instead. Every other tensor (the skips) is computed from the same input as in
 * the cached pass, so it takes its cached value; the logits are the output. One run per replacement (the model's
 * batch is 1).
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import type { Objective, OutputInfo } from '../contract.js';
import type { GraphAnalysis } from './analysis.js';
import { GraphBuilder, valueInfo } from './builder.js';
import { scoreOf } from './cotangent.js';
import { nchwToNhwc, nhwcToNchw } from './layout.js';
import { DEFAULT_SESSION_OPTIONS, type OrtRuntime } from './options.js';
import { DataType, encodeModel, type ModelProto } from './proto.js';

export class ReplacedScores {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  constructor(
    private readonly ort: OrtRuntime,
    private readonly model: ModelProto,
    private readonly analysis: GraphAnalysis,
    private readonly inputName: string,
    private readonly logitsName: string,
    private readonly output: OutputInfo,
    private readonly sessionOptions: InferenceSession.SessionOptions = {},
  ) {}

  /** The model with `tensor` as a second input: its producer writes elsewhere; the logits are the one output. */
  private replacedModel(tensor: string): ModelProto {
    const g = this.model.graph;
    const logits = [valueInfo(this.logitsName, DataType.FLOAT, this.analysis.shape(this.logitsName))];
    if (tensor === this.inputName) return { ...this.model, graph: { ...g, output: logits } };
    const graph = { ...g, node: g.node.map((n) => ({ ...n, output: [...n.output] })), input: [...g.input], valueInfo: [] };
    const b = new GraphBuilder(graph, 'replaced_');
    const producer = graph.node[g.node.indexOf(this.analysis.producer.get(tensor) as (typeof g.node)[number])];
    producer.output = producer.output.map((o) => (o === tensor ? b.fresh('unused') : o));
    graph.input.push(valueInfo(tensor, DataType.FLOAT, this.analysis.shape(tensor)));
    graph.output = logits;
    return { ...this.model, graph };
  }

  private session(tensor: string): Promise<InferenceSession> {
    let s = this.sessions.get(tensor);
    if (!s) {
      s = this.ort.InferenceSession.create(encodeModel(this.replacedModel(tensor)), { ...DEFAULT_SESSION_OPTIONS, ...this.sessionOptions });
      const made = s;
      void made.catch(() => this.sessions.delete(tensor));
      this.sessions.set(tensor, s);
    }
    return s;
  }

  /** S for each of B replacements `nhwc` ([B, h, w, K] data) of `tensor`, the model input being `input`. */
  async scores(tensor: string, input: OrtTensor, nhwc: Float32Array, batch: number, objective: Objective): Promise<Float32Array> {
    const out = new Float32Array(batch);
    const dims = this.analysis.shape(tensor);
    const [, c, h, w] = dims;
    const per = c * h * w;
    if (tensor === this.logitsName) {
      // The replacement is the logits themselves.
      for (let i = 0; i < batch; i++) out[i] = scoreOf(nhwc.subarray(i * per, (i + 1) * per), objective, this.output);
      return out;
    }
    const session = await this.session(tensor);
    for (let i = 0; i < batch; i++) {
      const a = new this.ort.Tensor('float32', nhwcToNchw(nhwc.subarray(i * per, (i + 1) * per), 1, h, w, c), dims);
      const feeds = tensor === this.inputName ? { [tensor]: a } : { [this.inputName]: input, [tensor]: a };
      const res = await session.run(feeds);
      out[i] = scoreOf(this.nhwcLogits(res[this.logitsName].data as Float32Array), objective, this.output);
    }
    return out;
  }

  private nhwcLogits(nchw: Float32Array): Float32Array {
    const d = this.analysis.shape(this.logitsName);
    return d.length === 4 ? nchwToNhwc(nchw, d[0], d[1], d[2], d[3]) : nchw;
  }

  release(): void {
    for (const s of this.sessions.values()) void s.then((x) => x.release()).catch(() => undefined);
    this.sessions.clear();
  }
}
