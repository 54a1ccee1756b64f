/**
 * Our wasm (and cpu) kernel fixes against the cpu backend (or a hand/finite-
 * difference reference where cpu's stock kernel is the broken one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerKernelFixes, setupBackend, type BackendName } from '../src/backend/index.js';

tf.env().set('PROD', true); // no Node banner / debug checks
registerKernelFixes();

type Shape = number[];
type Fn = () => tf.Tensor | tf.Tensor[];

/** Deterministic pseudo-random values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

const sz = (shape: Shape) => shape.reduce((a, b) => a * b, 1);

/** Runs `f` on a backend (inputs are built inside from plain arrays) and returns every output's values. */
async function runOn(name: BackendName, f: Fn): Promise<Float32Array[]> {
  await setupBackend(name);
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const vals = await Promise.all(list.map(async (t) => Float32Array.from(await t.data())));
  tf.dispose(list);
  return vals;
}

function maxRel(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'length');
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

function assertClose(a: Float32Array[], b: Float32Array[], tol = 1e-5, what = ''): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const r = maxRel(a[i], b[i]);
    assert.ok(r <= tol, `${what} output ${i}: max relative difference ${r.toExponential(2)} > ${tol}`);
  }
}

async function wasmVsCpu(f: Fn, tol = 1e-5, what = ''): Promise<void> {
  const w = await runOn('wasm', f);
  const c = await runOn('cpu', f);
  assertClose(w, c, tol, what);
}

/** Checks that running `f` (in a tidy, outputs disposed) leaves no tensors or wasm buffers behind. */
async function assertNoLeak(f: Fn): Promise<void> {
  await setupBackend('wasm');
  tf.dispose(tf.tidy(f)); // warm-up (kernel setup, caches)
  const before = tf.memory().numTensors;
  const ids = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
  tf.dispose(tf.tidy(f));
  assert.equal(tf.memory().numTensors, before, 'numTensors');
  assert.equal((tf.backend() as unknown as { numDataIds(): number }).numDataIds(), ids, 'wasm data ids');
}

/** The Conv2DBackpropFilter kernel (not exported as an op by tfjs). */
function convFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: Shape, s: number, pad: 'same' | 'valid'): tf.Tensor {
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
    strides: [s, s],
    pad,
    dataFormat: 'NHWC',
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** The Conv2DBackpropInput kernel. */
function convInputGrad(inputShape: Shape, dy: tf.Tensor4D, filter: tf.Tensor4D, s: number, pad: 'same' | 'valid'): tf.Tensor {
  return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, {
    strides: [s, s],
    pad,
    dataFormat: 'NHWC',
    inputShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

const t4 = (shape: Shape, seed: number) => tf.tensor4d(rand(sz(shape), seed), shape as [number, number, number, number]);

// ---------------------------------------------------------------- MaxPoolGrad

test('MaxPoolGrad: wasm = cpu, including windows that are entirely negative', async () => {
  const cases: Array<[Shape, number, number, 'same' | 'valid']> = [
    [[2, 6, 6, 3], 2, 2, 'valid'],
    [[2, 7, 5, 4], 2, 2, 'same'],
    [[1, 7, 7, 2], 3, 2, 'same'],
    [[2, 8, 6, 3], 3, 1, 'valid'],
    [[1, 5, 9, 5], 3, 3, 'same'],
  ];
  for (const [shape, k, s, pad] of cases) {
    for (const negative of [true, false]) {
      const f = () => {
        let x = t4(shape, 11);
        if (negative) x = tf.neg(tf.abs(x)).sub(0.1) as tf.Tensor4D;
        const dyShape = tf.maxPool(x, k, s, pad).shape;
        const dy = t4(dyShape, 12);
        return tf.grad((xx: tf.Tensor) =>
          tf
            .maxPool(xx as tf.Tensor4D, k, s, pad)
            .mul(dy)
            .sum(),
        )(x);
      };
      await wasmVsCpu(f, 1e-6, `maxPool k${k} s${s} ${pad} ${shape} neg=${negative}`);
    }
  }
});

test('MaxPoolGrad: all-negative window sends the gradient to its maximum (hand check)', async () => {
  for (const b of ['wasm', 'cpu'] as const) {
    const [g] = await runOn(b, () => {
      const x = tf.tensor4d([-5, -1, -3, -4], [1, 2, 2, 1]);
      return tf.grad((xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid').sum())(x);
    });
    assert.deepEqual(Array.from(g), [0, 1, 0, 0], b);
  }
});

// ------------------------------------------------------- Conv2D backprop kernels

const convCases: Array<{ k: number; s: number; pad: 'same' | 'valid'; x: Shape; co: number }> = [];
for (const k of [1, 2, 3]) {
  for (const s of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      convCases.push({ k, s, pad, x: [2, 9, 7, 3], co: 4 });
      convCases.push({ k, s, pad, x: [3, 8, 10, 8], co: 5 });
    }
  }
}
convCases.push({ k: 3, s: 1, pad: 'same', x: [2, 16, 16, 16], co: 32 });
convCases.push({ k: 2, s: 2, pad: 'valid', x: [2, 16, 16, 32], co: 16 });
convCases.push({ k: 3, s: 2, pad: 'same', x: [1, 11, 13, 1], co: 7 });

test('Conv2DBackpropFilter: wasm = cpu (k 1/2/3, stride 1/2, same/valid, batch > 1)', async () => {
  for (const { k, s, pad, x: xs, co } of convCases) {
    const f = () => {
      const x = t4(xs, 21);
      const w = t4([k, k, xs[3], co], 22);
      const dy = t4(tf.conv2d(x, w, s, pad).shape, 23);
      return convFilterGrad(x, dy, [k, k, xs[3], co], s, pad);
    };
    await wasmVsCpu(f, 1e-5, `filter k${k} s${s} ${pad} ${xs}->${co}`);
  }
});

test('Conv2DBackpropInput: wasm = cpu (k 1/2/3, stride 1/2, same/valid, batch > 1)', async () => {
  for (const { k, s, pad, x: xs, co } of convCases) {
    const f = () => {
      const x = t4(xs, 31);
      const w = t4([k, k, xs[3], co], 32);
      const dy = t4(tf.conv2d(x, w, s, pad).shape, 33);
      return convInputGrad(xs, dy, w, s, pad);
    };
    await wasmVsCpu(f, 1e-5, `input k${k} s${s} ${pad} ${xs}->${co}`);
  }
});

test('conv2d gradients through tf.grad (input and filter) and conv2dTranspose k2 s2: wasm = cpu', async () => {
  for (const { k, s, pad, x: xs, co } of convCases.slice(0, 12)) {
    const f = () => {
      const x = t4(xs, 41);
      const w = t4([k, k, xs[3], co], 42);
      const dy = t4(tf.conv2d(x, w, s, pad).shape, 43);
      return tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
        tf
          .conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, pad)
          .mul(dy)
          .sum(),
      )([x, w]);
    };
    await wasmVsCpu(f, 1e-5, `grads k${k} s${s} ${pad}`);
  }
  for (const pad of ['same', 'valid'] as const) {
    const f = () => {
      const x = t4([2, 5, 6, 6], 44); // low-res input, 6 channels
      const w = t4([2, 2, 4, 6], 45); // [kh, kw, outC, inC]
      const out = [2, 10, 12, 4] as [number, number, number, number];
      const dy = t4(out, 46);
      const fwd = tf.conv2dTranspose(x, w, out, 2, pad);
      const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
        tf
          .conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, out, 2, pad)
          .mul(dy)
          .sum(),
      )([x, w]);
      return [fwd, ...g];
    };
    await wasmVsCpu(f, 1e-5, `conv2dTranspose ${pad}`);
  }
});

test('conv2d gradients with numeric and explicit padding: wasm = cpu', async () => {
  const pads: Array<[number, number | tf.backend_util.ExplicitPadding]> = [
    [1, 1],
    [2, 1],
    [1, 2],
    [
      2,
      [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    ],
    [
      1,
      [
        [0, 0],
        [2, 0],
        [0, 2],
        [0, 0],
      ],
    ],
  ];
  for (const [s, pad] of pads) {
    const f = () => {
      const x = t4([2, 9, 8, 3], 47);
      const w = t4([3, 3, 3, 4], 48);
      const dy = t4(tf.conv2d(x, w, s, pad).shape, 49);
      return tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
        tf
          .conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, pad)
          .mul(dy)
          .sum(),
      )([x, w]);
    };
    await wasmVsCpu(f, 1e-5, `pad ${JSON.stringify(pad)} s${s}`);
  }
});

test('training kernels do not leak tensors or wasm buffers', async () => {
  const x = () => t4([2, 8, 8, 3], 51);
  await assertNoLeak(() => tf.grad((xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 2, 'same').sum())(x()));
  for (const s of [1, 2]) {
    await assertNoLeak(() => convFilterGrad(x(), t4([2, 8 / s, 8 / s, 5], 52), [3, 3, 3, 5], s, 'same'));
    await assertNoLeak(() => convInputGrad([2, 8, 8, 3], t4([2, 8 / s, 8 / s, 5], 53), t4([3, 3, 3, 5], 54), s, 'same'));
  }
  await assertNoLeak(() => convInputGrad([2, 8, 8, 3], t4([2, 4, 4, 5], 55), t4([2, 2, 3, 5], 56), 2, 'valid'));
});

// ------------------------------------------------------------------ depthwise

test('DepthwiseConv2dNative gradients (input and filter): wasm = cpu', async () => {
  const cases: Array<{ k: number; s: number; pad: 'same' | 'valid'; x: Shape; mult: number }> = [];
  for (const k of [1, 3, 5]) {
    for (const s of [1, 2]) {
      for (const pad of ['same', 'valid'] as const) {
        cases.push({ k, s, pad, x: [2, 9, 8, 4], mult: 1 });
        cases.push({ k, s, pad, x: [2, 7, 10, 3], mult: 2 });
      }
    }
  }
  for (const { k, s, pad, x: xs, mult } of cases) {
    const f = () => {
      const x = t4(xs, 61);
      const w = t4([k, k, xs[3], mult], 62);
      const dy = t4(tf.depthwiseConv2d(x, w, s, pad).shape, 63);
      return tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
        tf
          .depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, pad)
          .mul(dy)
          .sum(),
      )([x, w]);
    };
    await wasmVsCpu(f, 1e-5, `depthwise k${k} s${s} ${pad} ${xs} x${mult}`);
  }
});

// ------------------------------------------------------------ ResizeBilinearGrad

/** Σ resize(x)·dy = Σ x·grad for every x: checks a gradient without trusting any backend's grad. */
async function adjointError(name: BackendName, fwd: (x: tf.Tensor4D) => tf.Tensor, xs: Shape, seed: number): Promise<number> {
  const [lhs, rhs, scale] = await runOn(name, () => {
    const x = t4(xs, seed);
    const y = fwd(x);
    const dy = t4(y.shape, seed + 1);
    const g = tf.grad((xx: tf.Tensor) =>
      fwd(xx as tf.Tensor4D)
        .mul(dy)
        .sum(),
    )(x);
    return [tf.sum(tf.mul(y, dy)), tf.sum(tf.mul(x, g)), tf.sum(tf.abs(tf.mul(y, dy)))];
  });
  return Math.abs(lhs[0] - rhs[0]) / scale[0];
}

test('ResizeBilinearGrad: shape and values on non-square maps (adjoint identity), cpu and wasm', async () => {
  const cases: Array<[Shape, [number, number], boolean, boolean]> = [];
  for (const [xs, size] of [
    [
      [2, 5, 7, 3],
      [9, 4],
    ],
    [
      [1, 6, 3, 2],
      [12, 6],
    ],
    [
      [2, 8, 10, 3],
      [3, 5],
    ],
    [
      [1, 4, 4, 2],
      [8, 8],
    ],
  ] as Array<[Shape, [number, number]]>) {
    cases.push([xs, size, false, false], [xs, size, true, false], [xs, size, false, true]);
  }
  for (const [xs, size, ac, hp] of cases) {
    const fwd = (x: tf.Tensor4D) => tf.image.resizeBilinear(x, size, ac, hp);
    for (const b of ['cpu', 'wasm'] as const) {
      const err = await adjointError(b, fwd, xs, 71);
      assert.ok(err < 1e-5, `${b} resize ${xs}->${size} ac=${ac} hp=${hp}: adjoint error ${err}`);
    }
    await wasmVsCpu(
      () =>
        tf.grad((x: tf.Tensor) =>
          fwd(x as tf.Tensor4D)
            .mul(t4([xs[0], ...size, xs[3]], 73))
            .sum(),
        )(t4(xs, 72)),
      1e-5,
      `resize ${xs}->${size}`,
    );
  }
});

test('ResizeBilinearGrad: hand-computed 1x2 -> 1x3 (halfPixelCenters) and 2x1 -> 3x1', async () => {
  for (const b of ['cpu', 'wasm'] as const) {
    // width 2 -> 3, half-pixel: source x = (c+0.5)*2/3-0.5 = -1/6, 1/2, 7/6
    // weights: out0 -> x0 (clamped), out1 -> 0.5 x0 + 0.5 x1, out2 -> x1 (clamped)
    const [g] = await runOn(b, () =>
      tf.grad((x: tf.Tensor) =>
        tf.image
          .resizeBilinear(x as tf.Tensor4D, [1, 3], false, true)
          .mul(tf.tensor4d([1, 10, 100], [1, 1, 3, 1]))
          .sum(),
      )(tf.tensor4d([3, 4], [1, 1, 2, 1])),
    );
    assert.deepEqual(Array.from(g), [1 + 5, 5 + 100], `${b} width`);
    // height 2 -> 3 (alignCorners=false, no half pixel): source y = 0, 2/3, 4/3 (clamped to 1)
    const [g2] = await runOn(b, () =>
      tf.grad((x: tf.Tensor) =>
        tf.image
          .resizeBilinear(x as tf.Tensor4D, [3, 1])
          .mul(tf.tensor4d([1, 10, 100], [1, 3, 1, 1]))
          .sum(),
      )(tf.tensor4d([3, 4], [1, 2, 1, 1])),
    );
    assert.ok(Math.abs(g2[0] - (1 + 10 / 3)) < 1e-5 && Math.abs(g2[1] - (20 / 3 + 100)) < 1e-5, `${b} height ${g2}`);
  }
});

// ------------------------------------------------------- ResizeNearestNeighborGrad

test('ResizeNearestNeighborGrad: adjoint identity on both backends (up/down, non-square), hand check 2x', async () => {
  for (const [xs, size] of [
    [
      [2, 3, 5, 3],
      [6, 10],
    ],
    [
      [1, 4, 6, 2],
      [9, 7],
    ],
    [
      [2, 5, 3, 2],
      [2, 2],
    ],
  ] as Array<[Shape, [number, number]]>) {
    for (const [ac, hp] of [
      [false, false],
      [true, false],
      [false, true],
    ]) {
      const fwd = (x: tf.Tensor4D) => tf.image.resizeNearestNeighbor(x, size, ac, hp);
      for (const b of ['cpu', 'wasm'] as const) {
        const err = await adjointError(b, fwd, xs, 75);
        assert.ok(err < 1e-5, `${b} nearest ${xs}->${size} ac=${ac} hp=${hp}: adjoint error ${err}`);
      }
      await wasmVsCpu(() => fwd(t4(xs, 76)), 0, `nearest forward ${xs}->${size}`);
    }
  }
  for (const b of ['cpu', 'wasm'] as const) {
    const [g] = await runOn(b, () =>
      tf.grad((x: tf.Tensor) =>
        tf.image
          .resizeNearestNeighbor(x as tf.Tensor4D, [2, 4])
          .mul(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 4, 1]))
          .sum(),
      )(tf.zeros([1, 1, 2, 1])),
    );
    assert.deepEqual(Array.from(g), [1 + 2 + 5 + 6, 3 + 4 + 7 + 8], b);
  }
});

// ------------------------------------------------------------------ AvgPoolGrad

test('AvgPoolGrad: adjoint of AvgPool with same/valid padding, cpu and wasm; wasm = cpu', async () => {
  const cases: Array<[Shape, number, number, 'same' | 'valid']> = [
    [[2, 7, 9, 3], 2, 2, 'valid'],
    [[2, 7, 9, 3], 3, 2, 'same'],
    [[2, 7, 9, 3], 3, 1, 'same'],
    [[2, 7, 9, 3], 2, 2, 'same'],
    [[1, 16, 16, 4], 16, 16, 'valid'],
    [[1, 6, 5, 2], 3, 3, 'same'],
  ];
  for (const [xs, k, s, pad] of cases) {
    const fwd = (x: tf.Tensor4D) => tf.avgPool(x, k, s, pad);
    for (const b of ['cpu', 'wasm'] as const) {
      const err = await adjointError(b, fwd, xs, 81);
      assert.ok(err < 1e-5, `${b} avgPool ${xs} k${k} s${s} ${pad}: adjoint error ${err}`);
    }
    await wasmVsCpu(() => tf.grad((x: tf.Tensor) => fwd(x as tf.Tensor4D).sum())(t4(xs, 82)), 1e-5, `avgPool ${k} ${s} ${pad}`);
  }
});

// -------------------------------------------------------- Tile, Slice, SplitV, Concat

test('Tile, Slice, SplitV, Concat: wasm = cpu', async () => {
  await wasmVsCpu(
    () => [
      tf.tile(t4([1, 1, 1, 8], 91), [8, 6, 5, 1]),
      tf.tile(t4([2, 3, 1, 2], 92), [2, 1, 4, 3]),
      tf.tile(tf.tensor1d([1, 2, 3]), [4]),
      tf.tile(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), [3, 2]).cast('float32'),
    ],
    0,
    'tile',
  );
  await wasmVsCpu(
    () => {
      const x = t4([3, 6, 5, 16], 93);
      return [
        tf.slice(x, [0, 0, 0, 8], [-1, -1, -1, 8]),
        tf.slice(x, [1, 2, 1, 3], [2, 3, 4, 5]),
        tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]),
        tf.slice(tf.range(0, 10, 1, 'int32'), [2], [5]).cast('float32'),
        ...tf.split(x, 2, 3),
        ...tf.split(x, [1, 2], 0),
        ...tf.split(x, [7, 9], -1),
        ...tf.split(x, [2, 3], 2),
        tf.concat([x, t4([3, 6, 5, 8], 94)], 3),
        tf.concat([x, x], 1),
        tf.concat([x, t4([1, 6, 5, 16], 95)], 0),
        tf.concat([tf.tensor1d([1, 2], 'int32'), tf.tensor1d([3], 'int32')]).cast('float32'),
      ];
    },
    0,
    'slice/split/concat',
  );
});

// ------------------------------------------------------- UnsortedSegmentSum (gather grad)

test('gather gradients (UnsortedSegmentSum, missing on wasm): wasm = cpu', async () => {
  await wasmVsCpu(
    () => {
      const x = t4([2, 5, 4, 6], 121);
      const dyOf = (y: tf.Tensor) => tf.tensor(rand(y.size, 122), y.shape);
      const g = (f: (xx: tf.Tensor) => tf.Tensor) =>
        tf.grad((xx: tf.Tensor) =>
          f(xx)
            .mul(dyOf(f(x)))
            .sum(),
        )(x);
      return [
        g((xx) => tf.gather(xx, 3, 3)), // one class channel of the logits
        g((xx) => tf.gather(xx, [4, 0, 4, 1], 3)),
        g((xx) => tf.gather(xx, [1, 1, 0], 0)),
        tf.unsortedSegmentSum(tf.tensor2d(rand(12, 123), [4, 3]), tf.tensor1d([2, 0, 2, 7], 'int32'), 3),
      ];
    },
    1e-6,
    'gather',
  );
});

// --------------------------------------------------------------------- leaks

test('every registered kernel leaves no tensors or wasm buffers behind', async () => {
  const x = () => t4([2, 8, 8, 3], 101);
  const fns: Fn[] = [
    () => tf.grad((xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 2, 'same').sum())(x()),
    () => convFilterGrad(x(), t4([2, 8, 8, 5], 102), [3, 3, 3, 5], 1, 'same'),
    () => convFilterGrad(x(), t4([2, 4, 4, 5], 102), [3, 3, 3, 5], 2, 'same'),
    () => convInputGrad([2, 8, 8, 3], t4([2, 8, 8, 5], 103), t4([3, 3, 3, 5], 104), 1, 'same'),
    () => convInputGrad([2, 8, 8, 3], t4([2, 4, 4, 5], 103), t4([3, 3, 3, 5], 104), 2, 'same'),
    () => convInputGrad([2, 8, 8, 3], t4([2, 4, 4, 5], 105), t4([2, 2, 3, 5], 106), 2, 'valid'),
    () =>
      tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same').sum())([
        x(),
        t4([3, 3, 3, 1], 107),
      ]),
    () =>
      tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 'same').sum())([
        x(),
        t4([3, 3, 3, 2], 108),
      ]),
    () => tf.grad((xx: tf.Tensor) => tf.image.resizeBilinear(xx as tf.Tensor4D, [5, 16], false, true).sum())(x()),
    () => tf.grad((xx: tf.Tensor) => tf.avgPool(xx as tf.Tensor4D, 3, 2, 'same').sum())(x()),
    () => tf.grad((xx: tf.Tensor) => tf.image.resizeNearestNeighbor(xx as tf.Tensor4D, [16, 12]).sum())(x()),
    () => tf.grad((xx: tf.Tensor) => tf.gather(xx, [2, 0], 3).sum())(x()),
    () => [tf.clone(x()), tf.cast(x(), 'float32'), tf.cast(x(), 'int32')],
    () => [tf.tile(x(), [1, 2, 1, 3]), tf.slice(x(), [0, 1, 1, 1], [1, 3, 3, 2]), ...tf.split(x(), [1, 2], 3), tf.concat([x(), x()], 3)],
    () => [tf.sum(x(), [0, 1, 2]), tf.mean(x(), [1, 2], true), tf.sum(x()), tf.sum(tf.reshape(x(), [2, 192]), 1)],
  ];
  fns.push(() =>
    tf.grads((xx: tf.Tensor, g: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.batchNorm(xx, mean, variance, tf.zeros([3]), g).sum();
    })([x(), tf.ones([3])]),
  );
  for (const f of fns) await assertNoLeak(f);
});

// ------------------------------------------------- batch norm / mean gradients

test('batch norm gradients (FusedBatchNorm + Mean overrides) = plain-op reference, cpu and wasm', async () => {
  const eps = 1e-3;
  const xs: Shape = [4, 6, 5, 3];
  const reference = () => {
    const x = t4(xs, 111).mul(3).add(1);
    const gamma = tf.tensor1d([1.5, -0.7, 0.3]);
    const beta = tf.tensor1d([0.1, 0.2, -0.3]);
    const dy = t4(xs, 112);
    const n = xs[0] * xs[1] * xs[2];
    const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const mu = tf.sum(xx, [0, 1, 2]).div(n);
      const d = tf.sub(xx, mu);
      const v = tf.sum(tf.mul(d, d), [0, 1, 2]).div(n);
      return tf
        .add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(v, eps))), g), b)
        .mul(dy)
        .sum();
    };
    return tf.grads(f)([x, gamma, beta]);
  };
  const viaLayer = () => {
    const x = t4(xs, 111).mul(3).add(1);
    const gamma = tf.tensor1d([1.5, -0.7, 0.3]);
    const beta = tf.tensor1d([0.1, 0.2, -0.3]);
    const dy = t4(xs, 112);
    // exactly what tf.layers.batchNormalization does in training
    const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.batchNorm(xx, mean, variance, b, g, eps).mul(dy).sum();
    };
    return tf.grads(f)([x, gamma, beta]);
  };
  for (const b of ['cpu', 'wasm'] as const) {
    assertClose(await runOn(b, viaLayer), await runOn(b, reference), 2e-5, `${b} batch norm`);
  }
  // Only x and scale differentiated, and inference mode (constant statistics). A batchNorm
  // without scale or offset cannot be differentiated in tfjs 4.22 at all (engine/tape
  // fail on the absent input, with the stock gradient as with ours).
  const noScale = () =>
    tf.grads((xx: tf.Tensor, g: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf
        .batchNorm(xx, mean, variance, tf.zeros([3]), g)
        .mul(t4(xs, 113))
        .sum();
    })([t4(xs, 114), tf.tensor1d([0.5, 1, 2])]);
  const inference = () =>
    tf.grad((xx: tf.Tensor) =>
      tf
        .batchNorm(xx, tf.tensor1d([0.1, 0.2, 0.3]), tf.tensor1d([1, 2, 0.5]), tf.tensor1d([0, 1, 2]), tf.tensor1d([2, 3, 4]), 1e-3)
        .mul(t4(xs, 115))
        .sum(),
    )(t4(xs, 116));
  const rank2 = () =>
    tf.grads((xx: tf.Tensor, g: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0]);
      return tf
        .batchNorm(xx, mean, variance, tf.zeros([4]), g)
        .mul(tf.tensor2d(rand(20, 117), [5, 4]))
        .sum();
    })([tf.tensor2d(rand(20, 118), [5, 4]), tf.tensor1d([1, 2, 3, 4])]);
  for (const f of [noScale, inference, rank2]) await wasmVsCpu(f, 1e-5, 'batch norm variants');
  // inference-mode hand check: dx = dy * gamma / sqrt(var + eps)
  const [g] = await runOn('wasm', () =>
    tf.grad((xx: tf.Tensor) => tf.batchNorm(xx, tf.tensor1d([5]), tf.tensor1d([3]), tf.tensor1d([0]), tf.tensor1d([2]), 1).sum())(
      tf.tensor2d([1, 2], [2, 1]),
    ),
  );
  assert.deepEqual(Array.from(g), [1, 1]);
});

test('Mean gradient: dy / N broadcast over the reduced axes', async () => {
  for (const b of ['cpu', 'wasm'] as const) {
    const [g1, g2] = await runOn(b, () => [
      tf.grad((x: tf.Tensor) =>
        tf
          .mean(x, [0, 2])
          .mul(tf.tensor1d([1, 2, 3]))
          .sum(),
      )(tf.zeros([2, 3, 4])),
      tf.grad((x: tf.Tensor) => tf.mean(x))(tf.zeros([2, 5])),
    ]);
    const want = Array.from({ length: 24 }, (_, i) => [1, 2, 3][Math.floor(i / 4) % 3] / 8);
    assert.deepEqual(
      Array.from(g1).map((v) => +v.toFixed(6)),
      want.map((v) => +v.toFixed(6)),
      b,
    );
    assert.deepEqual(Array.from(g2), new Array(10).fill(0.1).map(Math.fround), b);
  }
});

// ------------------------------------------------------------- Sum and Mean

test('Sum/Mean over large axes: wasm = float64 reference (stock wasm accumulates in float32)', async () => {
  // Like the training loss's sum(yWeighted): [8,64,64,11], one entry per pixel 0.4 or 2.5, rest 0.
  // Stock wasm summed this 2.8e-4 (relative) too high, scaling every cross-entropy gradient.
  const N = 8 * 64 * 64;
  const w = new Float32Array(N * 11);
  const lab = rand(N, 201);
  for (let i = 0; i < N; i++) w[i * 11 + (Math.floor((lab[i] + 1) * 5.5) % 11)] = lab[i] > 0.5 ? 0.4 : 2.5;
  const xs = rand(8 * 64 * 64 * 16, 202).map((v) => Math.max(0, v) + 0.1);
  const shape = [8, 64, 64, 16] as [number, number, number, number];
  const refAll = w.reduce((a, b) => a + b, 0);
  const refC = new Float64Array(16);
  for (let i = 0; i < xs.length; i++) refC[i % 16] += xs[i];
  const refRows = new Float64Array(8 * 64);
  for (let i = 0; i < xs.length; i++) refRows[Math.floor(i / (64 * 16))] += xs[i];
  const refMid = new Float64Array(8 * 16); // axes [1, 2]: outer 8, inner 16
  for (let i = 0; i < xs.length; i++) refMid[Math.floor(i / (64 * 64 * 16)) * 16 + (i % 16)] += xs[i];
  for (const b of ['wasm', 'cpu'] as const) {
    const [all, perC, meanC, keep, rows, mid, mixed] = await runOn(b, () => {
      const x = tf.tensor4d(xs, shape);
      return [
        tf.sum(tf.tensor4d(w, [8, 64, 64, 11])),
        tf.sum(x, [0, 1, 2]),
        tf.mean(x, [0, 1, 2]),
        tf.sum(x, [0, 1, 2], true),
        tf.sum(tf.reshape(x, [8 * 64, 64 * 16]), 1),
        tf.mean(x, [1, 2]),
        tf.sum(x, [0, 2]),
      ];
    });
    const rel = (got: ArrayLike<number>, ref: ArrayLike<number>) => maxRel(Float32Array.from(got), Float32Array.from(ref));
    assert.ok(rel(all, [refAll]) < 1e-6, `${b} sum all: ${all[0]} vs ${refAll}`);
    assert.ok(rel(perC, refC) < 1e-6, `${b} sum [0,1,2]: ${rel(perC, refC)}`);
    assert.ok(rel(keep, refC) < 1e-6 && keep.length === 16, `${b} sum keepDims`);
    assert.ok(
      rel(
        meanC,
        refC.map((v) => v / N),
      ) < 1e-6,
      `${b} mean [0,1,2]: ${rel(
        meanC,
        refC.map((v) => v / N),
      )}`,
    );
    assert.ok(rel(rows, refRows) < 1e-6, `${b} sum innermost 1024: ${rel(rows, refRows)}`);
    assert.ok(
      rel(
        mid,
        refMid.map((v) => v / (64 * 64)),
      ) < 1e-6,
      `${b} mean [1,2]: ${rel(
        mid,
        refMid.map((v) => v / (64 * 64)),
      )}`,
    );
    assert.equal(mixed.length, 64 * 16); // two reduced blocks: stock kernel
  }
  // Small and non-float cases (stock fallbacks, keepDims, size-1 axes): wasm = cpu exactly.
  await wasmVsCpu(
    () => {
      const x = t4([2, 3, 1, 5], 203);
      return [
        tf.sum(x, -1),
        tf.mean(x, [1, 2], true),
        tf.sum(x, [0, 2]),
        tf.sum(x, []),
        tf.mean(x),
        tf.sum(x, 2),
        tf.cast(tf.sum(tf.tensor1d([1, 2, 3], 'int32')), 'float32'),
        tf.mean(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), 0),
      ];
    },
    1e-6,
    'small sums',
  );
});

test('Identity/Cast share data on wasm: clones survive disposal of the original; variables update', async () => {
  await setupBackend('wasm');
  const a = tf.tensor1d([1, 2, 3]);
  const b = a.clone();
  const c = tf.cast(a, 'float32');
  a.dispose();
  assert.deepEqual(Array.from(await b.data()), [1, 2, 3]);
  assert.deepEqual(Array.from(await c.data()), [1, 2, 3]);
  const v = tf.variable(b);
  v.assign(tf.tensor1d([4, 5, 6]));
  assert.deepEqual(Array.from(await b.data()), [1, 2, 3]);
  assert.deepEqual(Array.from(await v.data()), [4, 5, 6]);
  assert.deepEqual(Array.from(await tf.cast(tf.tensor1d([1.7, -2.2]), 'int32').data()), [1, -2]);
  tf.dispose([b, c, v]);
});
