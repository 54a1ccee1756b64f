import * as tf from '@tensorflow/tfjs';
import { GraphModelAdapter } from '../../src/engine/tfjs-graph/adapter.js';

/**
 * Writes a TF graph (the JSON GraphDef a converted model.json holds) node by node, with its
 * constants as weights, and loads it as a tfjs GraphModel — tiny graph models for tests
 * without a Python converter.
 */
export class GraphBuilder {
  private readonly nodes: Array<{ name: string; op: string; input: string[]; attr: Record<string, unknown> }> = [];
  private readonly specs: tf.io.WeightsManifestEntry[] = [];
  private readonly buffers: ArrayBuffer[] = [];

  input(name: string, shape: number[]): string {
    this.nodes.push({
      name,
      op: 'Placeholder',
      input: [],
      attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } } },
    });
    return name;
  }

  constant(name: string, values: ArrayLike<number>, shape: number[], dtype: 'float32' | 'int32' = 'float32'): string {
    const tfType = dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32';
    this.nodes.push({
      name,
      op: 'Const',
      input: [],
      attr: {
        dtype: { type: tfType },
        value: { tensor: { dtype: tfType, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } },
      },
    });
    this.specs.push({ name, shape, dtype });
    const data = dtype === 'float32' ? Float32Array.from(values) : Int32Array.from(values);
    this.buffers.push(data.buffer as ArrayBuffer);
    return name;
  }

  /** A constant holding a tensor's values (a LayersModel weight). */
  weight(name: string, t: tf.Tensor): string {
    return this.constant(name, t.dataSync(), t.shape);
  }

  op(name: string, op: string, inputs: string[], attr: Record<string, unknown> = {}): string {
    this.nodes.push({ name, op, input: inputs, attr: { T: { type: 'DT_FLOAT' }, ...attr } });
    return name;
  }

  async load(): Promise<GraphModelAdapter> {
    const total = this.buffers.reduce((n, b) => n + b.byteLength, 0);
    const weightData = new Uint8Array(total);
    let at = 0;
    for (const b of this.buffers) {
      weightData.set(new Uint8Array(b), at);
      at += b.byteLength;
    }
    const model = await tf.loadGraphModel(
      tf.io.fromMemory({
        modelTopology: { node: this.nodes, versions: { producer: 1 } },
        weightSpecs: this.specs,
        weightData: weightData.buffer,
        format: 'graph-model',
      }),
    );
    return new GraphModelAdapter(model);
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const intList = (xs: number[]) => ({ list: { i: xs.map(String) } });

/** Attributes of Conv2D-like ops: NHWC, strides and padding. */
export const convAttrs = (stride: number, padding: 'SAME' | 'VALID') => ({
  strides: intList([1, stride, stride, 1]),
  dilations: intList([1, 1, 1, 1]),
  padding: { s: b64(padding) },
  data_format: { s: b64('NHWC') },
});

/** Attributes of MaxPool/AvgPool. */
export const poolAttrs = (size: number, padding: 'SAME' | 'VALID') => ({
  ksize: intList([1, size, size, 1]),
  strides: intList([1, size, size, 1]),
  padding: { s: b64(padding) },
  data_format: { s: b64('NHWC') },
});

/** Attributes of a _FusedConv2D / _FusedMatMul: its fused ops ('BiasAdd', then an activation). */
export const fusedAttrs = (...ops: string[]) => ({ fused_ops: { list: { s: ops.map(b64) } }, num_args: { i: '1' }, epsilon: { f: 0 } });
