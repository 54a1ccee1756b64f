/**
 * Cheaper gradients for batch normalisation in training (tf.layers
 * BatchNormalization = tf.moments + FusedBatchNorm).
 *
 * - FusedBatchNorm: the stock gradient runs ~10 full-size ops (a Tile, several
 *   broadcast Muls and Sums); ours is one pass in JS computing all five
 *   gradients (kernel `SgcFusedBatchNormGrad`, cpu and wasm). Falls back to the
 *   stock gradient on other backends or for non-per-channel statistics.
 * - Mean: the stock gradient builds ones(x.shape), multiplies and divides; ours
 *   broadcasts dy/N once (a Tile, fast in JS on wasm). Same math, any backend.
 *
 * Note: these gradients are not themselves differentiable (no 2nd order).
 */
import * as tf from '@tensorflow/tfjs';
import {
  cpuValues,
  type CpuBackendLike,
  heapF32,
  isWasm,
  type KernelArgs,
  kernelConfigs,
  makeOutputF32,
  size,
  wasmAlloc,
} from '../util.js';

export const FUSED_BN_GRAD = 'SgcFusedBatchNormGrad';

/**
 * dx = dy·γ·r (r = 1/√(var+ε)) written into `dx`; returns per-channel
 * [dMean, dVar, dScale, dOffset], exactly the stock formulas.
 */
export function batchNormGradJs(
  x: Float32Array,
  dy: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  scale: Float32Array | null,
  eps: number,
  dx: Float32Array,
): Float32Array[] {
  const C = mean.length;
  const n = x.length;
  const r = new Float64Array(C);
  const g = new Float64Array(C);
  const k = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    r[c] = 1 / Math.sqrt(variance[c] + eps);
    g[c] = scale ? scale[c] : 1;
    k[c] = r[c] * g[c];
  }
  const sdy = new Float64Array(C);
  const sdyx = new Float64Array(C);
  // One channel at a time (strided) keeps the sums in registers: fastest in V8.
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const kc = k[c];
    let a = 0;
    let b = 0;
    for (let i = c; i < n; i += C) {
      const d = dy[i];
      dx[i] = d * kc;
      a += d;
      b += d * (x[i] - m);
    }
    sdy[c] = a;
    sdyx[c] = b;
  }
  const dMean = new Float32Array(C);
  const dVar = new Float32Array(C);
  const dScale = new Float32Array(C);
  const dOffset = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    dMean[c] = -r[c] * g[c] * sdy[c];
    dVar[c] = -0.5 * r[c] * r[c] * r[c] * g[c] * sdyx[c];
    dScale[c] = r[c] * sdyx[c];
    dOffset[c] = sdy[c];
  }
  return [dMean, dVar, dScale, dOffset];
}

function fusedBnGradKernel({ inputs, attrs, backend }: KernelArgs<unknown>): tf.TensorInfo[] {
  const { x, dy, mean, variance, scale } = inputs;
  const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  const grad = (values: (t: tf.TensorInfo) => Float32Array, dx: Float32Array) =>
    batchNormGradJs(values(x), values(dy), values(mean), values(variance), scale ? values(scale) : null, eps, dx);
  let dx: tf.TensorInfo;
  let rest: Float32Array[];
  if (isWasm(backend)) {
    // dx written in place on the heap; views taken after allocating it.
    dx = wasmAlloc(backend, x.shape.slice());
    rest = grad((t) => heapF32(backend, t), heapF32(backend, dx));
  } else {
    const cpu = backend as CpuBackendLike;
    const dxv = new Float32Array(size(x.shape));
    rest = grad((t) => cpuValues(cpu, t), dxv);
    dx = cpu.makeTensorInfo(x.shape.slice(), 'float32', dxv);
  }
  return [dx, ...rest.map((v) => makeOutputF32(backend, [mean.shape[0]], v))];
}

export const fusedBnGradKernelConfigs = kernelConfigs(FUSED_BN_GRAD, ['cpu', 'wasm'], fusedBnGradKernel);

type GradFunc = tf.GradConfig['gradFunc'];

/** Gradient configs replacing tfjs's FusedBatchNorm and Mean gradients; `stock` are the originals. */
export function batchNormGradConfigs(stock: { fusedBatchNorm?: tf.GradConfig }): tf.GradConfig[] {
  const fbnGrad: GradFunc = (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    const backendName = tf.getBackend();
    const perChannel =
      mean.rank === 1 &&
      variance.rank === 1 &&
      (scale == null || scale.rank === 1) &&
      mean.shape[0] === x.shape[x.rank - 1] &&
      x.dtype === 'float32';
    if (!perChannel || (backendName !== 'cpu' && backendName !== 'wasm')) {
      if (!stock.fusedBatchNorm) throw new Error('stock FusedBatchNorm gradient missing');
      return stock.fusedBatchNorm.gradFunc(dy, saved, attrs);
    }
    // Computed once, here (inside the backward tidy): each thunk below runs in its
    // own tidy and must only pick its output.
    const inputs: tf.NamedTensorMap = { x, dy: dy as tf.Tensor, mean, variance };
    if (scale != null) inputs.scale = scale;
    const [dx, dMean, dVar, dScale, dOffset] = tf.engine().runKernel(FUSED_BN_GRAD, inputs, attrs as tf.NamedAttrMap) as tf.Tensor[];
    return {
      x: () => dx,
      mean: () => dMean,
      variance: () => dVar,
      scale: () => dScale,
      offset: () => dOffset,
    };
  };
  const meanGrad: GradFunc = (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam((attrs as unknown as tf.MeanAttrs).axis, x.shape);
    const reduceSize = axes.reduce((a, ax) => a * x.shape[ax], 1);
    return {
      x: () => {
        const kept = x.shape.slice();
        for (const ax of axes) kept[ax] = 1;
        return tf.broadcastTo(tf.div(tf.reshape(dy as tf.Tensor, kept), reduceSize), x.shape);
      },
    };
  };
  return [
    { kernelName: tf.FusedBatchNorm, inputsToSave: ['x', 'mean', 'variance', 'scale'], gradFunc: fbnGrad },
    { kernelName: tf.Mean, inputsToSave: ['x'], gradFunc: meanGrad },
  ];
}
