/**
 * 3-D TF.js LayersModels ([1, D, H, W, C] in, [1, d, h, w, K] out: Conv3D, MaxPooling3D,
 * AveragePooling3D, UpSampling3D, Conv3DTranspose, …) as volume models: the same surface as the
 * ONNX volume model (src/volume/onnx-volume.ts) — channels-first arrays in and out, [1, C, D, H, W]
 * and [1, K, d, h, w] — so α and the CAM come from the same code (gradCam3d). Gradients come from
 * the tfjs-layers walker (./backward.ts) with the 3-D records of ./rules.ts on one cached forward
 * pass; the layout is transposed at the boundary only.
 */
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import { LayersBackward } from './backward.js';
import { LayersGraph, squashingActivation } from './graph.js';
import './upsampling3d.js';

export interface LayersVolumeLayer {
  name: string;
  type: string;
  /** [1, C, d, h, w] (channels first, as the ONNX volume model lists them). */
  shape: number[];
}

const TO_FIRST = [0, 4, 1, 2, 3];
const TO_LAST = [0, 2, 3, 4, 1];

export class LayersVolumeModel {
  /** [1, C, D, H, W]. */
  readonly inputDims: number[];
  /** [1, K, d, h, w]. */
  readonly logitsDims: number[];
  readonly logitsName: string;
  readonly activation: 'softmax' | 'sigmoid' | 'none';
  private readonly graph: LayersGraph;
  private readonly backward: LayersBackward;
  private readonly layerList: LayersVolumeLayer[] = [];

  constructor(readonly model: tf.LayersModel) {
    const shape = model.inputs[0]?.shape ?? [];
    if (model.inputs.length !== 1 || model.outputs.length !== 1)
      throw new SegGradCamError(`unsupported volume model: expected one input and one output`, 'model');
    if (shape.length !== 5 || shape.slice(1).some((d) => d == null))
      throw new SegGradCamError(
        `not a volume model: its input is [${shape.join(', ')}], expected [batch, depth, height, width, channels] with fixed sizes`,
        'model',
      );
    const [, D, H, W, C] = shape as number[];
    this.inputDims = [1, C, D, H, W];
    this.graph = new LayersGraph(model);
    this.backward = new LayersBackward(this.graph);
    const out = model.outputs[0].shape;
    if (out.length !== 5)
      throw new SegGradCamError(`not a volume segmentation model: its output has rank ${out.length}, expected 5`, 'model');
    const [, d, h, w, k] = out as number[];
    this.logitsDims = [1, k, d, h, w];
    const last = this.graph.steps.find((s) => s.outputIds.includes(this.graph.outputId));
    this.logitsName = last?.layer.name ?? '';
    this.activation = last ? squashingActivation(last.layer) : 'none';
    for (const step of this.graph.steps) {
      const s = step.outputShapes[0];
      if (s.length !== 5 || s.slice(1).some((x) => x == null)) continue;
      const [, sd, sh, sw, sc] = s as number[];
      this.layerList.push({ name: step.layer.name, type: step.layer.getClassName(), shape: [1, sc, sd, sh, sw] });
    }
  }

  /** The explainable layers in execution order (5-D outputs), with their shapes channels first. */
  layers(): LayersVolumeLayer[] {
    return this.layerList.map((l) => ({ ...l, shape: [...l.shape] }));
  }

  /** The default layer, as for ONNX volumes: the smallest grid (by voxels) before the logits, the last such in execution order. */
  bottleneck(): string {
    const layers = this.layerList.filter((l) => l.name !== this.logitsName);
    if (layers.length === 0) throw new SegGradCamError('the model has no volume layer before its logits', 'layer');
    let best = layers[0];
    for (const l of layers) if (l.shape[2] * l.shape[3] * l.shape[4] <= best.shape[2] * best.shape[3] * best.shape[4]) best = l;
    return best.name;
  }

  private tensorOf(layer: string): number {
    const id = this.graph.layerOutput.get(layer);
    if (id == null || !this.layerList.some((l) => l.name === layer))
      throw new SegGradCamError(
        `unknown layer '${layer}'; the model's volume layers: ${this.layerList.map((l) => l.name).join(', ')}`,
        'layer',
      );
    return id;
  }

  private input(x: Float32Array): tf.Tensor {
    if (x.length !== this.inputDims.reduce((a, b) => a * b, 1))
      throw new SegGradCamError(`a volume of ${x.length} values does not fit the model's input [${this.inputDims.join(', ')}]`, 'shape');
    return tf.transpose(tf.tensor(x, this.inputDims), TO_LAST);
  }

  /** The logits [1, K, d, h, w] (channels first) of one input [1, C, D, H, W]. */
  async predict(x: Float32Array): Promise<Float32Array> {
    const logits = tf.tidy(() => {
      const computed = this.graph.run(new Map([[this.graph.inputId, this.input(x)]]));
      return tf.transpose(computed.get(this.graph.outputId) as tf.Tensor, TO_FIRST);
    });
    try {
      return Float32Array.from(await logits.data());
    } finally {
      logits.dispose();
    }
  }

  /**
   * A and ∂S/∂A at `layer` ([1, C, d, h, w]) for S = Σ cotangent · logits (the cotangent
   * [1, K, d, h, w]), with the logits: one forward pass, one backward pass of the walker.
   */
  async gradient(
    x: Float32Array,
    layer: string,
    cotangent: Float32Array,
  ): Promise<{ activations: Float32Array; gradients: Float32Array; shape: number[]; logits: Float32Array }> {
    const id = this.tensorOf(layer);
    const missing = this.backward.unsupported(id);
    if (missing) throw new SegGradCamError(`no gradient rule for ${missing} on the way from ${layer} to the logits`, 'model');
    if (cotangent.length !== this.logitsDims.reduce((a, b) => a * b, 1))
      throw new SegGradCamError(
        `a cotangent of ${cotangent.length} values does not fit the logits [${this.logitsDims.join(', ')}]`,
        'shape',
      );
    const [a, g, y] = tf.tidy(() => {
      const input = this.input(x);
      const cache = new Map<number, tf.Tensor>([[this.graph.inputId, input]]);
      for (const [k, t] of this.graph.run(new Map(cache))) cache.set(k, t);
      const seed = tf.transpose(tf.tensor(cotangent, this.logitsDims), TO_LAST);
      const grad = this.backward.gradients(cache, [id], seed)[0];
      return [cache.get(id) as tf.Tensor, grad, cache.get(this.graph.outputId) as tf.Tensor].map((t) => tf.transpose(t, TO_FIRST));
    });
    try {
      const [activations, gradients, logits] = await Promise.all([a, g, y].map(async (t) => Float32Array.from(await t.data())));
      return { activations, gradients, shape: [...a.shape], logits };
    } finally {
      tf.dispose([a, g, y]);
    }
  }
}
