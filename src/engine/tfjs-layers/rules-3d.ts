import * as tf from '@tensorflow/tfjs';
import { channelsLast, fusedActivation, tiled, withBatch, type LayerFields, type LayerRule, type Weight } from './rules.js';
import { upSampling3dGrad } from './upsampling3d.js';

/* 3-D layers (volumes, [1, D, H, W, C]): the 2-D rules one rank up, on TF.js's 3-D kernels
   (Conv3DBackpropInputV2, MaxPool3DGrad, AvgPool3DGrad: cpu, wasm and webgl have them). No window
   rules: volumes run whole-map backward passes (windowReason says the output is not a 2-D map). */
const triple = (v: number[] | undefined, fallback: number): [number, number, number] => [
  v?.[0] ?? fallback,
  v?.[1] ?? v?.[0] ?? fallback,
  v?.[2] ?? v?.[0] ?? fallback,
];
const pool3dAttrs = (l: LayerFields) => {
  const filterSize = triple(l.poolSize, 2);
  return { filterSize, strides: triple(l.strides ?? l.poolSize, 2), pad: l.padding ?? 'valid', dimRoundingMode: undefined };
};
export const RULES_3D: Record<string, LayerRule> = {
  Conv3D: {
    applies: (l, n) => n === 1 && channelsLast(l) && triple(l.dilationRate, 1).every((d) => d === 1),
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g) return [null];
      const shape = withBatch(ctx.inputs[0].shape, g.shape[0] as number) as [number, number, number, number, number];
      const kernel = (l.kernel as Weight).read() as tf.Tensor5D;
      return [tf.conv3dTranspose(g as tf.Tensor5D, kernel, shape, triple(l.strides, 1), l.padding ?? 'valid')];
    },
  },
  Conv3DTranspose: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const g = fusedActivation(l, ctx);
      if (!g) return [null];
      return [tf.conv3d(g as tf.Tensor5D, (l.kernel as Weight).read() as tf.Tensor5D, triple(l.strides, 1), l.padding ?? 'valid')];
    },
  },
  MaxPooling3D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const k = ctx.dy.shape[0];
      const inputs = { dy: ctx.dy, input: tiled(ctx.inputs[0], k), output: tiled(ctx.output, k) };
      return [
        tf
          .engine()
          .runKernel('MaxPool3DGrad', inputs as unknown as tf.NamedTensorMap, pool3dAttrs(l) as unknown as tf.NamedAttrMap) as tf.Tensor,
      ];
    },
  },
  AveragePooling3D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => {
      const input = tf.zeros(withBatch(ctx.inputs[0].shape, ctx.dy.shape[0])); // only its shape is read
      return [
        tf
          .engine()
          .runKernel(
            'AvgPool3DGrad',
            { dy: ctx.dy, input } as unknown as tf.NamedTensorMap,
            pool3dAttrs(l) as unknown as tf.NamedAttrMap,
          ) as tf.Tensor,
      ];
    },
  },
  UpSampling3D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (l, ctx) => [upSampling3dGrad(ctx.dy, triple(l.size, 2))],
  },
  GlobalAveragePooling3D: {
    applies: (l, n) => n === 1 && channelsLast(l),
    vjp: (_l, ctx) => {
      const [, d, h, w, c] = ctx.inputs[0].shape;
      const k = ctx.dy.shape[0];
      return [tf.broadcastTo(tf.div(tf.reshape(ctx.dy, [k, 1, 1, 1, c]), d * h * w), [k, d, h, w, c])];
    },
  },
};
