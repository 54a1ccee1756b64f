/**
 * Small models written here for the op records of the transformer and modern-CNN families
 * (normalisations, element-wise functions, indexing, reductions): input [1, 3, 6, 8] → a 1x1
 * conv to [1, 4, 6, 8] → the op(s) under test → output. Checked against finite differences by
 * test/onnx-ops-2.test.ts; listed by test/onnx-ops.test.ts's "every supported op has a test graph".
 */
import { GraphBuilder, emptyModel, valueInfo } from '../../src/engine/onnx/builder.js';
import { DataType, type ModelProto } from '../../src/engine/onnx/proto.js';
import { floatTensor } from '../../src/engine/onnx/tensor.js';
import { gaussian, uniform } from '../../scripts/onnx/reference.js';

type Body = (b: GraphBuilder, x: string) => string;

function model(body: Body, outDims: number[] = [1, 4, 6, 8], opset = 17): ModelProto {
  const m = emptyModel(opset);
  const g = m.graph;
  const b = new GraphBuilder(g);
  g.input.push(valueInfo(b.claim('input'), DataType.FLOAT, [1, 3, 6, 8]));
  const w = b.floats('w', [4, 3, 1, 1], gaussian(12, 3, 0.7));
  const x = b.op('Conv', ['input', w], { kernel_shape: { ints: [1, 1] } });
  const y = body(b, x);
  b.node('Identity', [y], {}, [b.claim('output')]);
  g.output.push(valueInfo('output', DataType.FLOAT, outDims));
  return m;
}

/** [1, 4, 6, 8] → tokens [1, 48, 4] (n = i·w + j), and back. */
const toTokens = (b: GraphBuilder, x: string) =>
  b.op('Transpose', [b.op('Reshape', [x, b.ints('s', [1, 4, 48])])], { perm: { ints: [0, 2, 1] } });
const fromTokens = (b: GraphBuilder, t: string) =>
  b.op('Reshape', [b.op('Transpose', [t], { perm: { ints: [0, 2, 1] } }), b.ints('s', [1, 4, 6, 8])]);

const f = (b: GraphBuilder, v: number) => b.scalar('k', v);

export const OP_MODELS_2: Array<[string, ModelProto]> = [
  [
    'InstanceNormalization',
    model((b, x) => b.op('InstanceNormalization', [x, b.floats('s', [4], uniform(4, 5, 0.5, 1.5)), b.floats('b', [4], uniform(4, 6))])),
  ],
  [
    'GroupNormalization as PyTorch exports it (Reshape → InstanceNormalization → Reshape → Mul → Add)',
    model((b, x) => {
      const r = b.op('Reshape', [x, b.ints('g', [1, 2, -1])]);
      const n = b.op('InstanceNormalization', [r, b.floats('one', [2], [1, 1]), b.floats('zero', [2], [0, 0])], { epsilon: { f: 1e-5 } });
      const back = b.op('Reshape', [n, b.ints('s', [1, 4, 6, 8])]);
      return b.op('Add', [
        b.op('Mul', [back, b.floats('gamma', [4, 1, 1], uniform(4, 7, 0.5, 1.5))]),
        b.floats('beta', [4, 1, 1], uniform(4, 8)),
      ]);
    }),
  ],
  [
    'LayerNormalization over tokens, GELU (Erf)',
    model((b, x) => {
      const t = toTokens(b, x);
      const n = b.op('LayerNormalization', [t, b.floats('s', [4], uniform(4, 9, 0.5, 1.5)), b.floats('b', [4], uniform(4, 10))], {
        axis: { i: -1 },
        epsilon: { f: 1e-5 },
      });
      const gelu = b.op('Mul', [b.op('Mul', [n, f(b, 0.5)]), b.op('Add', [b.op('Erf', [b.op('Div', [n, f(b, Math.SQRT2)])]), f(b, 1)])]);
      return fromTokens(b, gelu);
    }),
  ],
  [
    'attention: batched MatMul (both operands on the path), Gather of k and v with constant indices, Softmax on the last axis',
    model((b, x) => {
      const t = toTokens(b, x);
      const q = b.op('MatMul', [t, b.floats('wq', [4, 4], gaussian(16, 11, 0.6))]);
      const kv = b.op(
        'Transpose',
        [b.op('Reshape', [b.op('MatMul', [t, b.floats('wkv', [4, 8], gaussian(32, 12, 0.6))]), b.ints('s', [1, 48, 2, 4])])],
        {
          perm: { ints: [2, 0, 1, 3] },
        },
      );
      const k = b.op('Gather', [kv, b.ints('i0', [0], [])], { axis: { i: 0 } });
      const v = b.op('Gather', [kv, b.ints('i1', [1], [])], { axis: { i: 0 } });
      const scores = b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: { ints: [0, 2, 1] } })]), f(b, 0.5)]);
      return fromTokens(b, b.op('MatMul', [b.op('Softmax', [scores], { axis: { i: -1 } }), v]));
    }),
  ],
  ['Softmax over a spatial axis (axis 2)', model((b, x) => b.op('Softmax', [x], { axis: { i: 2 } }))],
  [
    'Gather with a 1-D index list on a spatial axis (repeated index)',
    model((b, x) => b.op('Gather', [x, b.ints('i', [5, 0, 5, 2, 1, 3])], { axis: { i: 2 } })),
  ],
  [
    'Sqrt, Pow (constant exponents), Exp, Log, Abs, Neg',
    model((b, x) => {
      const sq = b.op('Sqrt', [b.op('Add', [b.op('Mul', [x, x]), f(b, 1)])]);
      const p = b.op('Add', [b.op('Pow', [x, f(b, 2)]), b.op('Pow', [x, b.floats('e', [4, 1, 1], [1, 3, 2, 1])])]);
      const e = b.op('Exp', [b.op('Mul', [x, f(b, 0.3)])]);
      const l = b.op('Log', [b.op('Add', [b.op('Abs', [x]), f(b, 1)])]);
      return b.op('Sum', [sq, p, e, b.op('Neg', [l])]);
    }),
  ],
  [
    'Min and Max (two operands on the path, a constant operand)',
    model((b, x) => b.op('Add', [b.op('Max', [x, b.op('Tanh', [x])]), b.op('Min', [x, f(b, 0.2)])])),
  ],
  [
    'Where with a constant condition, PRelu',
    model((b, x) => {
      const cond = b.op('Greater', [b.floats('c', [1, 1, 6, 8], gaussian(48, 13)), f(b, 0)]);
      const w = b.op('Where', [cond, x, b.op('Tanh', [x])]);
      return b.op('PRelu', [w, b.floats('slope', [4, 1, 1], [0.1, 0.25, -0.3, 0.5])]);
    }),
  ],
  [
    'Split (channels, and a spatial axis with an unused part), Concat',
    model((b, x) => {
      const [a, c] = b.node('Split', [x, b.ints('sp', [1, 3])], { axis: { i: 1 } }, 2);
      const ch = b.op('Concat', [b.op('Sigmoid', [c]), b.op('Tanh', [a])], { axis: { i: 1 } });
      const [left, right] = b.node('Split', [ch, b.ints('sp2', [3, 5])], { axis: { i: 3 } }, 2);
      return b.op('Concat', [b.op('Mul', [right, f(b, 2)]), left], { axis: { i: 3 } });
    }),
  ],
  [
    'Expand and Tile after a reduction (ReduceMean, ReduceMax with and without keepdims)',
    model((b, x) => {
      const m = b.op('ReduceMean', [x], { axes: { ints: [2] }, keepdims: { i: 1 } });
      const e = b.op('Expand', [m, b.ints('s', [1, 4, 6, 8])]);
      const mx = b.op('ReduceMax', [x], { axes: { ints: [3] }, keepdims: { i: 0 } });
      const t = b.op('Tile', [b.op('Unsqueeze', [mx, b.ints('ax', [3])]), b.ints('r', [1, 1, 1, 8])]);
      const mn = b.op('ReduceMin', [x], { axes: { ints: [1, 2] }, keepdims: { i: 1 } });
      return b.op('Sum', [b.op('Mul', [e, x]), t, b.op('Mul', [mn, b.op('Tanh', [x])])]);
    }),
  ],
  ['Tile along the spatial axes', model((b, x) => b.op('Tanh', [b.op('Tile', [x, b.ints('r', [1, 1, 2, 3])])]), [1, 4, 12, 24])],
  [
    'Shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape) and a Constant node on the path',
    model((b, x) => {
      const sh = b.op('Shape', [x]);
      const h = b.op('Unsqueeze', [b.op('Gather', [sh, b.ints('i', [2], [])], { axis: { i: 0 } }), b.ints('ax', [0])]);
      const w = b.op('Unsqueeze', [b.op('Gather', [sh, b.ints('j', [3], [])], { axis: { i: 0 } }), b.ints('ax', [0])]);
      const hw = b.op('Mul', [h, w]);
      const flat = b.op('Reshape', [x, b.op('Concat', [b.op('Slice', [sh, b.ints('a', [0]), b.ints('z', [2])]), hw], { axis: { i: 0 } })]);
      const c = b.op('Constant', [], { value: { t: floatTensor('v', [], [0.7]) } });
      return b.op('Reshape', [b.op('Tanh', [b.op('Mul', [flat, c])]), sh]);
    }),
  ],
  [
    'dilated convolutions (stride 1 and stride 2)',
    model(
      (b, x) => {
        const d1 = b.op('Conv', [x, b.floats('k1', [4, 4, 3, 3], gaussian(144, 14, 0.3))], {
          kernel_shape: { ints: [3, 3] },
          dilations: { ints: [2, 2] },
          pads: { ints: [2, 2, 2, 2] },
        });
        return b.op('Conv', [b.op('Relu', [d1]), b.floats('k2', [4, 4, 3, 3], gaussian(144, 15, 0.3))], {
          kernel_shape: { ints: [3, 3] },
          dilations: { ints: [2, 1] },
          strides: { ints: [2, 2] },
          pads: { ints: [2, 1, 2, 1] },
        });
      },
      [1, 4, 3, 4],
    ),
  ],
  ...resizeModels(),
];

/** Resize up (6x8 → 9x13, x2, x3) and down (→ 4x5) in every mode, coordinate transformation and nearest rounding. */
function resizeModels(): Array<[string, ModelProto]> {
  const out: Array<[string, ModelProto]> = [];
  const ctms = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'half_pixel_symmetric'];
  const cases: Array<[string, Record<string, { s: string } | { f: number } | { i: number }>]> = [];
  for (const nearest of ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'])
    for (const ctm of [...ctms, 'tf_half_pixel_for_nn'])
      cases.push([
        `nearest ${nearest} ${ctm}`,
        { mode: { s: 'nearest' }, nearest_mode: { s: nearest }, coordinate_transformation_mode: { s: ctm } },
      ]);
  for (const ctm of ctms) cases.push([`linear ${ctm}`, { mode: { s: 'linear' }, coordinate_transformation_mode: { s: ctm } }]);
  for (const ctm of ctms) cases.push([`cubic ${ctm}`, { mode: { s: 'cubic' }, coordinate_transformation_mode: { s: ctm } }]);
  cases.push(['cubic a=-0.5 exclude_outside', { mode: { s: 'cubic' }, cubic_coeff_a: { f: -0.5 }, exclude_outside: { i: 1 } }]);
  for (const [name, attrs] of cases) {
    for (const [dir, size] of [
      ['up', [9, 13]],
      ['down', [4, 5]],
      // Integer factors: the transposes run as phase filters (src/engine/onnx/ops/resample-phases.ts).
      ['up x2', [12, 16]],
      ['up x3', [18, 24]],
    ] as const) {
      const opset = JSON.stringify(attrs).includes('symmetric') ? 19 : 17;
      out.push([
        `Resize ${name} ${dir}`,
        model((b, x) => b.op('Tanh', [b.op('Resize', [x, '', '', b.ints('size', [1, 4, ...size])], attrs)]), [1, 4, ...size], opset),
      ]);
    }
  }
  return out;
}
