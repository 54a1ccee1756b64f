/**
 * The benchmark U-Net as an ONNX graph written by the project (no PyTorch needed): `levels`
 * encoder blocks and a bottleneck at 1/2^levels (two conv3x3 + ReLU per block, 2x2 max-pool
 * down, ConvTranspose k2 s2 up, skip concatenated after the up-conv, 1x1 conv to the logits).
 * Seeded random weights (He-uniform, small biases), NCHW like torch.onnx.export, same
 * parameter layout as torch.nn.Conv2d / ConvTranspose2d so PyTorch can load the same numbers.
 *
 * 128x256 input, base 16, 4 levels: 1.94 M parameters (7.8 MB) — generated at test and bench
 * time from the seed rather than committed.
 */
import { GraphBuilder, emptyModel, valueInfo } from '../../src/engine/onnx/builder.js';
import { DataType, type ModelProto } from '../../src/engine/onnx/proto.js';
import { floatTensor } from '../../src/engine/onnx/tensor.js';

export interface UnetSpec {
  height: number;
  width: number;
  base: number;
  levels: number;
  classes: number;
  inChannels: number;
  seed: number;
  opset: number;
}

export const BENCH_UNET: UnetSpec = { height: 128, width: 256, base: 16, levels: 4, classes: 8, inChannels: 3, seed: 7, opset: 13 };

/** Parameters in PyTorch's state_dict order and layout. */
export interface Param {
  name: string;
  dims: number[];
  data: Float32Array;
}

// The project's seeded generator (the same mulberry32 stream), re-exported for the scripts that used this copy.
import { mulberry32 } from '../../src/data/prng.js';
export { mulberry32 };

export function buildUnet(partial: Partial<UnetSpec> = {}): { model: ModelProto; params: Param[]; spec: UnetSpec } {
  const spec = { ...BENCH_UNET, ...partial };
  const rand = mulberry32(spec.seed);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * bound);
  const model = emptyModel(spec.opset, 'unet');
  const g = model.graph;
  const b = new GraphBuilder(g);
  const params: Param[] = [];
  const param = (name: string, dims: number[], data: Float32Array) => {
    params.push({ name, dims, data });
    return b.initializer(floatTensor(name, dims, data));
  };

  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, spec.inChannels, spec.height, spec.width]));

  const conv = (x: string, name: string, cin: number, cout: number, k: number): string => {
    const fanIn = cin * k * k;
    const w = param(`${name}.weight`, [cout, cin, k, k], uniform(cout * cin * k * k, Math.sqrt(6 / fanIn)));
    const bias = param(`${name}.bias`, [cout], uniform(cout, 0.1));
    const p = (k - 1) / 2;
    return b.node(
      'Conv',
      [x, w, bias],
      {
        kernel_shape: { ints: [k, k] },
        pads: { ints: [p, p, p, p] },
        strides: { ints: [1, 1] },
        dilations: { ints: [1, 1] },
        group: { i: 1 },
      },
      [b.fresh(`${name}_out`)],
      `/${name}/Conv`,
    )[0];
  };
  const block = (x: string, name: string, cin: number, cout: number): string => {
    const c1 = b.node('Relu', [conv(x, `${name}.conv1`, cin, cout, 3)], {}, [b.fresh(`${name}_relu1`)], `/${name}/Relu`)[0];
    return b.node('Relu', [conv(c1, `${name}.conv2`, cout, cout, 3)], {}, [b.fresh(`${name}_relu2`)], `/${name}/Relu_1`)[0];
  };

  let x = 'input';
  let cin = spec.inChannels;
  const skips: Array<{ t: string; c: number }> = [];
  for (let l = 0; l < spec.levels; l++) {
    const c = spec.base * 2 ** l;
    x = block(x, `enc${l + 1}`, cin, c);
    skips.push({ t: x, c });
    x = b.node(
      'MaxPool',
      [x],
      { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] }, pads: { ints: [0, 0, 0, 0] }, ceil_mode: { i: 0 } },
      [b.fresh(`pool${l + 1}`)],
      `/pool${l + 1}/MaxPool`,
    )[0];
    cin = c;
  }
  const cb = spec.base * 2 ** spec.levels;
  x = block(x, 'bottleneck', cin, cb);
  cin = cb;
  for (let l = spec.levels - 1; l >= 0; l--) {
    const c = spec.base * 2 ** l;
    const name = `up${l + 1}`;
    const w = param(`${name}.weight`, [cin, c, 2, 2], uniform(cin * c * 4, Math.sqrt(6 / ((cin * 4) / 4))));
    const bias = param(`${name}.bias`, [c], uniform(c, 0.1));
    const up = b.node(
      'ConvTranspose',
      [x, w, bias],
      {
        kernel_shape: { ints: [2, 2] },
        strides: { ints: [2, 2] },
        pads: { ints: [0, 0, 0, 0] },
        dilations: { ints: [1, 1] },
        group: { i: 1 },
      },
      [b.fresh(`${name}_out`)],
      `/${name}/ConvTranspose`,
    )[0];
    const cat = b.node('Concat', [up, skips[l].t], { axis: { i: 1 } }, [b.fresh(`cat${l + 1}`)], `/cat${l + 1}/Concat`)[0];
    x = block(cat, `dec${l + 1}`, 2 * c, c);
    cin = c;
  }
  conv(x, 'head', cin, spec.classes, 1);
  g.node[g.node.length - 1].output[0] = 'logits';
  g.output.push(valueInfo('logits', DataType.FLOAT, [1, spec.classes, spec.height, spec.width]));
  return { model, params, spec };
}

/** Parameters as one binary blob plus a JSON index, for the PyTorch reference scripts. */
export function paramsToBlob(params: Param[]): { index: Array<{ name: string; dims: number[]; offset: number }>; blob: Uint8Array } {
  const total = params.reduce((s, p) => s + p.data.length, 0);
  const all = new Float32Array(total);
  const index: Array<{ name: string; dims: number[]; offset: number }> = [];
  let o = 0;
  for (const p of params) {
    all.set(p.data, o);
    index.push({ name: p.name, dims: p.dims, offset: o });
    o += p.data.length;
  }
  return { index, blob: new Uint8Array(all.buffer) };
}
