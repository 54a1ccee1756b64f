/**
 * Picks the TensorFlow.js backend in the worker by a short timing, not by name: without a GPU,
 * WebGL and WebGPU run on SwiftShader and are far slower than wasm (see docs/design-notes.md), on a
 * real GPU they win. Every candidate runs the same small forward + gradient probe; a candidate
 * whose gradient disagrees with wasm's (a missing or wrong backward kernel) is not used.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerKernelFixes, setupBackend } from '../../src/backend/index.js';
import { registerWebglFixes } from './gpu-kernel-fixes.js';
import type { BackendChoice, BackendReport } from './protocol.js';

export interface WasmFiles {
  'tfjs-backend-wasm.wasm': string;
  'tfjs-backend-wasm-simd.wasm': string;
  'tfjs-backend-wasm-threaded-simd.wasm': string;
}

/** Deterministic probe data (no RNG: the same values on every backend). */
function wave(n: number, k: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + k) * 0.5 + Math.cos(i * 0.011 * k) * 0.25;
  return a;
}

const S = 48;
const C = 16;

/**
 * One forward and backward pass through the ops segmentation networks use (conv, depthwise
 * conv, pooling, transposed conv, bilinear resize with half-pixel centres, concat), the
 * gradient taken at an inner activation as Seg-Grad-CAM does. Returns ∂S/∂A.
 */
function probeGradient(): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.tensor4d(wave(S * S * C, 1), [1, S, S, C]);
    const w1 = tf.tensor4d(
      wave(9 * C * C, 2).map((v) => v * 0.2),
      [3, 3, C, C],
    );
    const w2 = tf.tensor4d(
      wave(9 * C * C, 3).map((v) => v * 0.2),
      [3, 3, C, C],
    );
    const dw = tf.tensor4d(
      wave(9 * C, 4).map((v) => v * 0.3),
      [3, 3, C, 1],
    );
    const up = tf.tensor4d(
      wave(4 * C * C, 5).map((v) => v * 0.3),
      [2, 2, C, C],
    );
    const head = tf.tensor4d(
      wave(2 * C * 3, 6).map((v) => v * 0.3),
      [1, 1, 2 * C, 3],
    );
    const a = tf.relu(tf.conv2d(x, w1, 1, 'same'));
    const f = (t: tf.Tensor): tf.Scalar => {
      const act = t as tf.Tensor4D;
      const p = tf.maxPool(act, 2, 2, 'same');
      const d = tf.relu6(tf.depthwiseConv2d(p, dw, 1, 'same'));
      const q = tf.avgPool(d, 2, 2, 'same');
      const c = tf.relu(tf.conv2d(q, w2, 1, 'same'));
      const u = tf.conv2dTranspose(c, up, [1, S / 2, S / 2, C], 2, 'same');
      const r = tf.image.resizeBilinear(u, [S, S], false, true);
      const logits = tf.conv2d(tf.concat([r, act], -1), head, 1, 'same');
      return tf.sum(logits.slice([0, 0, 0, 1], [1, S / 2, S, 1]));
    };
    return tf.grad(f)(a);
  });
}

async function timeProbe(): Promise<{ ms: number; values: Float32Array }> {
  let g = probeGradient();
  const values = (await g.data()) as Float32Array;
  g.dispose();
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    g = probeGradient();
    await g.data();
    g.dispose();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, values };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / (scale || 1);
}

async function webglAvailable(): Promise<boolean> {
  try {
    if (typeof OffscreenCanvas === 'undefined') return false;
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    return gl != null;
  } catch {
    return false;
  }
}

async function webgpuAvailable(): Promise<boolean> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return false;
  try {
    if ((await gpu.requestAdapter()) == null) return false;
    await import('@tensorflow/tfjs-backend-webgpu');
    return true;
  } catch {
    return false;
  }
}

async function use(name: string, wasm: WasmFiles): Promise<boolean> {
  if (name === 'wasm' || name === 'cpu') {
    // The library's setup (kernel fixes, single-threaded SIMD wasm); a failure here is fatal.
    await setupBackend(name, { wasmPaths: wasm as unknown as Record<string, string> });
    return true;
  }
  try {
    registerKernelFixes();
    registerWebglFixes();
    if (name === 'webgpu' && !(await webgpuAvailable())) return false;
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Selects the backend. 'auto' times wasm, then WebGL and WebGPU where the browser has them,
 * and keeps the fastest whose gradient agrees with wasm's; `remembered` (a choice timed
 * earlier in this browser) skips the timing.
 */
export async function chooseBackend(choice: BackendChoice, wasm: WasmFiles, remembered?: string): Promise<BackendReport> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (choice !== 'auto') {
    if (!(await use(choice, wasm))) {
      await use('wasm', wasm);
      return {
        backend: tf.getBackend(),
        probes: [{ name: choice, note: 'unavailable in this browser' }],
        reason: `${choice} is not available here; using wasm`,
      };
    }
    return { backend: tf.getBackend(), probes: [], reason: 'chosen by hand' };
  }
  if (remembered && ['wasm', 'webgl', 'webgpu'].includes(remembered) && (await use(remembered, wasm))) {
    return { backend: tf.getBackend(), probes: [], reason: 'timed earlier in this browser' };
  }

  const probes: BackendReport['probes'] = [];
  await use('wasm', wasm);
  const ref = await timeProbe();
  probes.push({ name: 'wasm', ms: ref.ms });
  let best = { name: 'wasm', ms: ref.ms };

  const candidates: Array<[string, () => Promise<boolean>]> = [
    ['webgl', webglAvailable],
    ['webgpu', webgpuAvailable],
  ];
  for (const [name, available] of candidates) {
    if (!(await available())) {
      probes.push({ name, note: 'not available' });
      continue;
    }
    if (!(await use(name, wasm))) {
      probes.push({ name, note: 'failed to start' });
      continue;
    }
    try {
      const r = await timeProbe();
      const diff = maxRelDiff(r.values, ref.values);
      if (!(diff < 1e-3)) {
        probes.push({ name, ms: r.ms, note: `gradient differs from wasm (${diff.toExponential(1)})` });
      } else {
        probes.push({ name, ms: r.ms });
        if (r.ms < best.ms) best = { name, ms: r.ms };
      }
    } catch (err) {
      probes.push({ name, note: `probe failed: ${(err as Error).message.split('\n')[0]}` });
    }
  }
  await use(best.name, wasm);
  // Free the GPU contexts of the backends not chosen (a new choice starts a new worker).
  for (const { name } of probes) if (name !== best.name && name !== 'wasm' && tf.findBackend(name)) tf.removeBackend(name);
  return { backend: tf.getBackend(), probes, reason: 'fastest by a short timing' };
}
