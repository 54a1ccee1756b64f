/**
 * Identity and same-dtype Cast for wasm without copying: share the data and
 * bump its reference count, as the cpu backend (and wasm's own Reshape) do.
 * The stock wasm kernels copy the whole buffer, and the engine clones every
 * tensor it saves for the backward pass (~400 copies per U-Net training step).
 */
import * as tf from '@tensorflow/tfjs';
import { callKernel, type KernelArgs, kernelConfigs } from '../util.js';

interface RefCounting {
  incRef(dataId: tf.TensorInfo['dataId']): void;
}

function share(backend: RefCounting, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

export function identityWasm({ inputs, attrs, backend }: KernelArgs<RefCounting>): tf.TensorInfo {
  const { x } = inputs;
  if (x.dtype === 'string') return callKernel(tf.Identity, 'wasm', backend, inputs, attrs);
  return share(backend, x);
}

export function castWasm({ inputs, attrs, backend }: KernelArgs<RefCounting>): tf.TensorInfo {
  const { x } = inputs;
  if (x.dtype !== 'string' && (attrs as unknown as tf.CastAttrs).dtype === x.dtype) return share(backend, x);
  return callKernel(tf.Cast, 'wasm', backend, inputs, attrs);
}

export const identityConfigs = [...kernelConfigs(tf.Identity, ['wasm'], identityWasm), ...kernelConfigs(tf.Cast, ['wasm'], castWasm)];
