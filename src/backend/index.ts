/**
 * Backend setup for seg-grad-cam: picks the tfjs backend and registers kernel
 * fixes that make gradients on `wasm` correct and fast (see docs/kernels.md).
 *
 * Browser-safe: no Node built-ins are imported here.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { maxPoolGradConfigs } from './kernels/max-pool-grad.js';
import { conv2dBackpropFilterConfigs } from './kernels/conv2d-backprop-filter.js';
import { conv2dBackpropInputConfigs } from './kernels/conv2d-backprop-input.js';
import { conv3dBackpropInputConfigs } from './kernels/conv3d-backprop-input.js';
import { tileConfigs } from './kernels/tile.js';
import { sliceConcatConfigs } from './kernels/slice-concat.js';
import { depthwiseConfigs } from './kernels/depthwise.js';
import { resizeBilinearGradConfigs } from './kernels/resize-bilinear-grad.js';
import { avgPoolGradConfigs } from './kernels/avg-pool-grad.js';
import { batchNormGradConfigs, fusedBnGradKernelConfigs } from './kernels/batch-norm.js';
import {
  avgPoolGradSecondOrderConfig,
  batchNormSecondOrderConfig,
  depthwiseBackpropInputSecondOrderConfig,
  inputSavingGradConfigs,
  resizeGradSecondOrderConfigs,
} from './kernels/second-order.js';
import { identityConfigs } from './kernels/identity.js';
import { resizeNearestGradConfigs } from './kernels/resize-nearest-grad.js';
import { unsortedSegmentSumConfigs } from './kernels/unsorted-segment-sum.js';
import { reduceSumConfigs } from './kernels/reduce-sum.js';
import { rememberStock } from './util.js';

export type BackendName = 'wasm' | 'cpu';

export interface SetupOptions {
  /**
   * Where the .wasm binaries are served from (a URL/path prefix ending in '/',
   * or a map per file name), for bundlers. In Node the package finds its own
   * binaries in node_modules and this is not needed.
   */
  wasmPaths?: string | Record<string, string>;
}

/** Every kernel we register: overrides of stock kernels, or additions. */
function kernelFixes(): tf.KernelConfig[] {
  return [
    ...maxPoolGradConfigs,
    ...conv2dBackpropFilterConfigs,
    ...conv2dBackpropInputConfigs,
    ...conv3dBackpropInputConfigs,
    ...tileConfigs,
    ...sliceConcatConfigs,
    ...depthwiseConfigs,
    ...resizeBilinearGradConfigs,
    ...avgPoolGradConfigs,
    ...fusedBnGradKernelConfigs,
    ...identityConfigs,
    ...resizeNearestGradConfigs,
    ...unsortedSegmentSumConfigs,
    ...reduceSumConfigs,
  ];
}

const REGISTERED = Symbol.for('seg-grad-cam.backend.registered');

/**
 * Registers our kernels (idempotent, also across copies of this module). Stock
 * kernels are captured first so that fallbacks can call them.
 */
export function registerKernelFixes(): void {
  const g = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (g[REGISTERED]) return;
  for (const cfg of kernelFixes()) {
    if (tf.getKernel(cfg.kernelName, cfg.backendName)) {
      rememberStock(cfg.kernelName, cfg.backendName);
      tf.unregisterKernel(cfg.kernelName, cfg.backendName);
    }
    tf.registerKernel(cfg);
  }
  const stockFusedBatchNorm = tf.getGradient(tf.FusedBatchNorm);
  for (const cfg of batchNormGradConfigs({ fusedBatchNorm: stockFusedBatchNorm })) tf.registerGradient(cfg);
  tf.registerGradient(batchNormSecondOrderConfig());
  tf.registerGradient(avgPoolGradSecondOrderConfig());
  for (const cfg of resizeGradSecondOrderConfigs()) tf.registerGradient(cfg);
  tf.registerGradient(depthwiseBackpropInputSecondOrderConfig());
  for (const cfg of inputSavingGradConfigs()) tf.registerGradient(cfg);
  g[REGISTERED] = true;
}

let wasmPathsSet = false;

/**
 * Registers the kernel fixes, selects the backend and waits for it.
 * For wasm, the SIMD single-threaded build is used (the threaded build's worker
 * is a blob: URL, which Node refuses; in browsers it brought nothing here).
 */
export async function setupBackend(name: BackendName = 'wasm', options: SetupOptions = {}): Promise<BackendName> {
  registerKernelFixes();
  if (name === 'wasm') {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (options.wasmPaths !== undefined && !wasmPathsSet && tf.findBackend('wasm') == null) {
      setWasmPaths(options.wasmPaths);
      wasmPathsSet = true;
    }
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tfjs backend '${name}' failed to initialise`);
  await tf.ready();
  return tf.getBackend() as BackendName;
}
