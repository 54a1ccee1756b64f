/**
 * Two WebGL backward kernels (tfjs 4.22) disagree with cpu and wasm, and the backend probe caught
 * both:
 * - ResizeBilinearGrad ignores halfPixelCenters (relative error 0.5): gradients through a
 *   half-pixel bilinear resize (MediaPipe's selfie model, for one) are wrong;
 * - MaxPoolGrad sends the gradient of a window with tied maxima (all-zero windows after a ReLU:
 *   common) to another element than the first maximum, which cpu, wasm (with the library's fix)
 *   and TensorFlow use — so α differ (relative error 0.8 on the probe).
 * The explorer registers the library's JS kernels for them on webgl (a read back to the CPU per
 * call; the stock ResizeBilinearGrad still runs when halfPixelCenters is false). The library
 * fixes cpu and wasm in src/backend; this lives here because only the browser has WebGL.
 */
import * as tf from '@tensorflow/tfjs';
import { maxPoolGradInto } from '../../src/backend/kernels/max-pool-grad.js';
import { resizeBilinearGradJs } from '../../src/backend/kernels/resize-bilinear-grad.js';

interface WebglLike {
  readSync(dataId: unknown): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
}

let done = false;

export function registerWebglFixes(): void {
  if (done) return;
  const stock = tf.getKernel(tf.ResizeBilinearGrad, 'webgl');
  if (!stock) return;
  tf.unregisterKernel(tf.ResizeBilinearGrad, 'webgl');
  tf.registerKernel({
    kernelName: tf.ResizeBilinearGrad,
    backendName: 'webgl',
    kernelFunc: (args) => {
      const { alignCorners, halfPixelCenters } = args.attrs as unknown as { alignCorners: boolean; halfPixelCenters?: boolean };
      if (!halfPixelCenters) return stock.kernelFunc(args);
      const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
      const backend = args.backend as unknown as WebglLike;
      const dyValues = Float32Array.from(backend.readSync(dy.dataId) as ArrayLike<number>);
      const dx = resizeBilinearGradJs(dyValues, dy.shape, images.shape, !!alignCorners, true);
      return backend.makeTensorInfo(images.shape.slice(), 'float32', dx);
    },
  });
  if (tf.getKernel(tf.MaxPoolGrad, 'webgl')) tf.unregisterKernel(tf.MaxPoolGrad, 'webgl');
  tf.registerKernel({
    kernelName: tf.MaxPoolGrad,
    backendName: 'webgl',
    kernelFunc: (args) => {
      const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const backend = args.backend as unknown as WebglLike;
      const read = (t: tf.TensorInfo) => Float32Array.from(backend.readSync(t.dataId) as ArrayLike<number>);
      const dx = new Float32Array(input.shape.reduce((a, b) => a * b, 1));
      maxPoolGradInto(read(input), read(dy), dx, info);
      return backend.makeTensorInfo(input.shape.slice(), 'float32', dx);
    },
  });
  done = true;
}
