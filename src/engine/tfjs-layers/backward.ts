import * as tf from '@tensorflow/tfjs';
import type { GridBox } from '../contract.js';
import { squashingActivation, type GraphStep, type LayersGraph } from './graph.js';
import { RULES, activationVjp, fusedActivation, type LayerFields, type LayerRule, type Rule } from './rules.js';
import { addWindowed, onBox, toMap, type Windowed } from './windows.js';

/**
 * Reverse mode over a LayersModel's node graph on a cached forward pass: the walker. Each layer's
 * vector-Jacobian product comes from its class's record (./rules.ts), written with TF.js ops and
 * the cached activations — the design of the ONNX gradient graph (src/engine/onnx/ops/) for
 * TF.js. Nothing downstream of the layer runs forward again, so a new region or class costs one
 * backward pass, and K regions are K cotangents stacked on the batch axis against batch-1
 * activations (broadcast).
 *
 * Layers without a rule make `unsupported` name them; the adapter then differentiates with
 * tf.grad over a re-run of the downstream part instead (exact as well, just slower).
 *
 * Windows (./windows.ts): when every step on the path has a window rule (stride-1 convs,
 * up-convolutions whose kernel equals their stride, tiling pools, nearest up-sampling, and
 * pointwise, per-channel and channel-concat layers), each cotangent is kept as the box where it
 * can be nonzero and the tensor on that box, the cached activations are read on the box, and the
 * numbers are those of the whole map. A fine decoder level then costs the region plus a few pixels.
 */

const withBatch = (shape: number[], k: number): number[] => [k, ...shape.slice(1)];

export class LayersBackward {
  private readonly support = new Map<number, string | null>();
  private readonly windowReasons = new Map<string, string | null>();
  /** The step that produces each tensor, and how many step inputs read it. */
  private readonly producer = new Map<number, number>();
  private readonly consumers = new Map<number, number>();

  constructor(private readonly graph: LayersGraph) {
    graph.steps.forEach((step, i) => {
      for (const o of step.outputIds) this.producer.set(o, i);
      for (const x of step.inputIds) this.consumers.set(x, (this.consumers.get(x) ?? 0) + 1);
    });
  }

  /** Null when every layer downstream of tensor `id` has a VJP here; else the first one that has none ("name (Class)"). */
  unsupported(id: number): string | null {
    const known = this.support.get(id);
    if (known !== undefined) return known;
    let missing: string | null = null;
    for (const i of this.graph.downstreamOf(id)) {
      const step = this.graph.steps[i];
      if (!this.ruleFor(step)) {
        missing = `${step.layer.name} (${step.layer.getClassName()})`;
        break;
      }
    }
    this.support.set(id, missing);
    return missing;
  }

  /** Null when windowed backward passes apply to tensors `ids` (every step after them has a window rule and the logits are a map); else why not. */
  windowReason(ids: number[]): string | null {
    const key = ids.join(',');
    const known = this.windowReasons.get(key);
    if (known !== undefined) return known;
    let reason: string | null = null;
    const out = this.graph.steps[this.producer.get(this.graph.outputId) as number]?.outputShapes[0];
    if (!out || out.length !== 4) reason = 'the model output is not a map';
    for (const i of this.pathOf(ids).downstream) {
      if (reason) break;
      const why = this.windowRule(i);
      if (why) reason = `${this.graph.steps[i].layer.name} (${this.graph.steps[i].layer.getClassName()}): ${why}`;
    }
    this.windowReasons.set(key, reason);
    return reason;
  }

  /** Why step `i` cannot run on a window (null: it can): its record's window rule. */
  private windowRule(i: number): string | null {
    const step = this.graph.steps[i];
    if (!this.ruleFor(step)) return 'no VJP';
    const className = step.layer.getClassName();
    if (this.linearAtOutput(step) && (className === 'Activation' || className === 'Softmax')) return null;
    const rule = this.recordFor(step);
    if (!rule?.window) return 'no window rule';
    return rule.window(step.layer as unknown as LayerFields, { input: this.inputShapeOf(step), output: step.outputShapes[0] });
  }

  /** The (symbolic) shape of a step's first input, when an earlier step produces it. */
  private inputShapeOf(step: GraphStep): Array<number | null> | null {
    const p = this.producer.get(step.inputIds[0]);
    if (p == null) return null;
    const from = this.graph.steps[p];
    return from.outputShapes[from.outputIds.indexOf(step.inputIds[0])] ?? null;
  }

  /**
   * ∂S/∂(tensor `id`) for the cotangent `seed` of the logits ([K, …]: K objectives at once),
   * on the cached forward pass `cache` (every tensor by id, batch 1). The caller tidies; check
   * `unsupported(id)` first. Returns [K, …] (zeros where the output does not depend on it).
   */
  gradient(cache: Map<number, tf.Tensor>, id: number, seed: tf.Tensor): tf.Tensor {
    return this.gradients(cache, [id], seed)[0];
  }

  /** The steps after tensors `ids` and the tensors on the way (ids included). */
  private pathOf(ids: number[]): { downstream: Set<number>; onPath: Set<number> } {
    const downstream = new Set<number>();
    for (const id of ids) for (const i of this.graph.downstreamOf(id)) downstream.add(i);
    const onPath = new Set<number>(ids);
    for (const i of downstream) this.graph.steps[i].outputIds.forEach((o) => onPath.add(o));
    return { downstream, onPath };
  }

  /**
   * The same for several tensors in one backward pass (the cotangents of every tensor on the way
   * are computed anyway). With `support` (the box of the logits outside which the seed is zero;
   * null: zero everywhere) and windowReason(ids) null, the backward pass runs on windows.
   */
  gradients(cache: Map<number, tf.Tensor>, ids: number[], seed: tf.Tensor, support?: GridBox | null): tf.Tensor[] {
    if (support !== undefined && this.windowReason(ids) == null) return this.windowedGradients(cache, ids, seed, support);
    const { graph } = this;
    const { downstream, onPath } = this.pathOf(ids);
    const cotangents = new Map<number, tf.Tensor>([[graph.outputId, seed]]);
    for (const { step, concat } of this.backwardSteps(downstream, onPath, (t) => cotangents.has(t))) {
      const dy = cotangents.get(step.outputIds[0]) as tf.Tensor;
      if (concat != null) {
        // A conv right after a concat with some inputs off the path (a U-Net's skips): only the
        // input channels on the path are differentiated, with the matching slice of the kernel.
        this.convThroughConcat(step, graph.steps[concat], cache, dy, onPath, cotangents);
        continue;
      }
      const grads = (this.ruleFor(step) as Rule)(step.layer as unknown as LayerFields, {
        dy,
        inputs: step.inputIds.map((x) => cache.get(x) as tf.Tensor),
        output: cache.get(step.outputIds[0]) as tf.Tensor,
        want: step.inputIds.map((x) => onPath.has(x)),
        linear: this.linearAtOutput(step),
      });
      step.inputIds.forEach((x, k) => {
        const g = grads[k];
        if (!g || !onPath.has(x)) return;
        const prev = cotangents.get(x);
        cotangents.set(x, prev ? tf.add(prev, g) : g);
      });
    }
    return ids.map((id) => cotangents.get(id) ?? tf.zeros(withBatch((cache.get(id) as tf.Tensor).shape, seed.shape[0] as number)));
  }

  /** `gradients` on windows (see the module comment); the results are whole maps. */
  private windowedGradients(cache: Map<number, tf.Tensor>, ids: number[], seed: tf.Tensor, support: GridBox | null): tf.Tensor[] {
    const { graph } = this;
    const k = seed.shape[0] as number;
    const whole = (id: number) => (cache.get(id) as tf.Tensor).shape;
    const cotangents = new Map<number, Windowed>(support ? [[graph.outputId, { t: onBox(seed, support), box: support }]] : []);
    const add = (id: number, g: Windowed) => {
      const prev = cotangents.get(id);
      cotangents.set(id, prev ? addWindowed(prev, g) : g);
    };
    const { downstream, onPath } = this.pathOf(ids);
    for (const { step, concat } of this.backwardSteps(downstream, onPath, (t) => cotangents.has(t))) {
      const dy = cotangents.get(step.outputIds[0]) as Windowed;
      const layer = step.layer as unknown as LayerFields;
      const record = this.recordFor(step);
      const output = onBox(cache.get(step.outputIds[0]) as tf.Tensor, dy.box);
      const linear = this.linearAtOutput(step);
      if (concat != null) {
        // After a concat with inputs off the path: only the on-path channels, with their kernel slice.
        const g = fusedActivation(layer, { dy: dy.t, inputs: [], output, want: [true], linear }) as tf.Tensor;
        const channelVjp = record?.channelVjp as NonNullable<LayerRule['channelVjp']>;
        let offset = 0;
        for (const x of graph.steps[concat].inputIds) {
          const shape = whole(x);
          const c = shape[3] as number;
          if (onPath.has(x)) add(x, channelVjp(layer, g, offset, c, shape, { box: dy.box, outputShape: whole(step.outputIds[0]) }));
          offset += c;
        }
        continue;
      }
      if (record?.windowVjp) {
        add(
          step.inputIds[0],
          record.windowVjp(layer, {
            dy,
            output,
            input: (box) => onBox(cache.get(step.inputIds[0]) as tf.Tensor, box),
            inputShape: whole(step.inputIds[0]),
            outputShape: whole(step.outputIds[0]),
            linear,
          }),
        );
        continue;
      }
      // The box stays: the VJP on the window, with the cached tensors read on it.
      const grads = (this.ruleFor(step) as Rule)(layer, {
        dy: dy.t,
        inputs: step.inputIds.map((x) => onBox(cache.get(x) as tf.Tensor, dy.box)),
        output,
        want: step.inputIds.map((x) => onPath.has(x)),
        linear,
      });
      step.inputIds.forEach((x, j) => {
        const g = grads[j];
        if (g && onPath.has(x)) add(x, { t: g, box: dy.box });
      });
    }
    return ids.map((id) => {
      const w = cotangents.get(id);
      const [, h, width] = whole(id);
      return w ? toMap(w, h, width) : tf.zeros(withBatch(whole(id), k));
    });
  }

  /**
   * The steps after the cut, last first, that a cotangent reaches (`reached(tensor)`, asked as the
   * walk goes), each with the concat it differentiates through (concatIntoConv), which is then
   * not visited on its own.
   */
  private *backwardSteps(
    downstream: Set<number>,
    onPath: Set<number>,
    reached: (tensor: number) => boolean,
  ): Generator<{ step: GraphStep; concat: number | null }> {
    const skipped = new Set<number>();
    for (const i of [...downstream].sort((a, b) => b - a)) {
      const step = this.graph.steps[i];
      if (skipped.has(i) || !reached(step.outputIds[0])) continue;
      const concat = this.concatIntoConv(i, onPath);
      if (concat != null) skipped.add(concat);
      yield { step, concat };
    }
  }

  /**
   * The Concatenate step (index) feeding Conv2D step `i`, when the conv is its only consumer, it
   * joins on the channel axis and not all of its inputs are on the path; else null.
   */
  private concatIntoConv(i: number, onPath: Set<number>): number | null {
    const step = this.graph.steps[i];
    if (!this.recordFor(step)?.channelVjp || !this.ruleFor(step)) return null;
    const t = step.inputIds[0];
    const p = this.producer.get(t);
    if (p == null) return null;
    const concat = this.graph.steps[p];
    const axis = (concat.layer as unknown as LayerFields).axis;
    if (concat.layer.getClassName() !== 'Concatenate' || (axis !== -1 && axis !== 3) || this.consumers.get(t) !== 1) return null;
    // Some inputs on the path (the concat is downstream of the cut, not the cut itself), not all.
    const on = concat.inputIds.filter((x) => onPath.has(x)).length;
    return on > 0 && on < concat.inputIds.length ? p : null;
  }

  private convThroughConcat(
    conv: GraphStep,
    concat: GraphStep,
    cache: Map<number, tf.Tensor>,
    dy: tf.Tensor,
    onPath: Set<number>,
    cotangents: Map<number, tf.Tensor>,
  ): void {
    const layer = conv.layer as unknown as LayerFields;
    const g = fusedActivation(layer, {
      dy,
      inputs: [],
      output: cache.get(conv.outputIds[0]) as tf.Tensor,
      want: [true],
      linear: this.linearAtOutput(conv),
    }) as tf.Tensor4D;
    const channelVjp = this.recordFor(conv)?.channelVjp as NonNullable<LayerRule['channelVjp']>;
    let offset = 0;
    for (const x of concat.inputIds) {
      const shape = (cache.get(x) as tf.Tensor).shape;
      const c = shape[3] as number;
      if (onPath.has(x)) {
        const dx = channelVjp(layer, g, offset, c, shape).t;
        const prev = cotangents.get(x);
        cotangents.set(x, prev ? tf.add(prev, dx) : dx);
      }
      offset += c;
    }
  }

  /** The record of a step's layer class, if there is one. */
  private recordFor(step: GraphStep): LayerRule | undefined {
    const className = step.layer.getClassName();
    return Object.hasOwn(RULES, className) ? RULES[className] : undefined;
  }

  /** The step's VJP, or null when there is none for this layer (class, inputs, activation). */
  private ruleFor(step: GraphStep): Rule | null {
    const className = step.layer.getClassName();
    const layer = step.layer as unknown as LayerFields;
    const linear = this.linearAtOutput(step);
    // A softmax/sigmoid layer at the end is skipped by the executor (the cache holds logits).
    if (linear && (className === 'Activation' || className === 'Softmax')) return (_l, ctx) => [ctx.dy];
    const rule = this.recordFor(step);
    if (!rule || step.outputIds.length !== 1 || !rule.applies(layer, step.inputIds.length)) return null;
    const activationOk = !layer.activation || linear || activationVjp(layer.activation.getClassName().toLowerCase()) != null;
    return activationOk ? rule.vjp : null;
  }

  /** The output layer's softmax/sigmoid is skipped (the cache holds logits), as the executor does. */
  private linearAtOutput(step: GraphStep): boolean {
    return step.outputIds.includes(this.graph.outputId) && squashingActivation(step.layer) !== 'none';
  }
}
