/**
 * The worker's view into a running explanation, without changing the library: the model adapter
 * is wrapped so that every forward and backward pass is counted (for a progress bar and a truthful
 * timing line), and before each pass the worker lets queued messages in and stops a job that a
 * newer question or a Cancel has made stale (the job's promise rejects with `Cancelled`).
 */
import type * as tf from '@tensorflow/tfjs';
import type { ForwardPass, ModelAdapter } from '../../src/engine/contract.js';

/** Thrown into a stale job at its next pass; the worker answers 'superseded'. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface PassCount {
  /** Model forward passes run (a batch of N inputs counts N). */
  forward: number;
  /** Backward passes run (a batched backward run counts once per input it differentiates). */
  backward: number;
}

interface Job {
  /** True when the job's answer is no longer wanted. */
  isStale(): boolean;
  /** After every pass. */
  onPass(count: PassCount): void;
}

/** How often (ms) a running job lets queued messages in. */
const YIELD_MS = 20;

export class PassMeter {
  private job: Job | null = null;
  private count: PassCount = { forward: 0, backward: 0 };
  private lastYield = 0;

  /** Starts counting for a job; returns its count (live until the next start). */
  start(job: Job): PassCount {
    this.job = job;
    this.count = { forward: 0, backward: 0 };
    return this.count;
  }

  end(): void {
    this.job = null;
  }

  /** Before a pass: lets queued messages in now and then, and stops a stale job (unless `always`: the cached forward pass). */
  async before(cancellable: boolean): Promise<void> {
    const job = this.job;
    if (!job) return;
    const now = performance.now();
    if (now - this.lastYield >= YIELD_MS) {
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      this.lastYield = performance.now();
    }
    if (cancellable && job.isStale()) throw new Cancelled();
  }

  after(forward: number, backward: number): void {
    if (!this.job) return;
    this.count.forward += forward;
    this.count.backward += backward;
    this.job?.onPass(this.count);
  }

  /** The adapter as the Explainer sees it: the same object, its passes counted and cancellable. */
  wrap(adapter: ModelAdapter): ModelAdapter {
    const meter = this as PassMeter;
    return new Proxy(adapter, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        switch (prop) {
          case 'forward':
            return async (input: tf.Tensor4D, ...rest: unknown[]) => {
              // Never cancelled: the Explainer may share this pass with later questions.
              await meter.before(false);
              const pass = (await fn.call(target, input, ...rest)) as ForwardPass;
              meter.after(input.shape[0], 0);
              return meter.wrapPass(pass);
            };
          case 'scores':
            return async (inputs: tf.Tensor4D, ...rest: unknown[]) => {
              await meter.before(true);
              const out = await fn.call(target, inputs, ...rest);
              meter.after(inputs.shape[0], 0);
              return out;
            };
          case 'inputGradients':
            return async (inputs: tf.Tensor4D, ...rest: unknown[]) => {
              await meter.before(true);
              const out = await fn.call(target, inputs, ...rest);
              meter.after(inputs.shape[0], inputs.shape[0]);
              return out;
            };
          default:
            return fn.bind(target);
        }
      },
    });
  }

  private wrapPass(pass: ForwardPass): ForwardPass {
    const meter = this as PassMeter;
    return new Proxy(pass, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (prop === 'gradient' || prop === 'gradientBatch' || prop === 'gradientLayers') {
          return async (...args: unknown[]) => {
            await meter.before(true);
            const out = await fn.apply(target, args);
            // gradientBatch: one backward run per objective (stacked cotangents); the others: one.
            meter.after(0, prop === 'gradientBatch' ? (args[1] as unknown[]).length : 1);
            return out;
          };
        }
        if (prop === 'hessianActivationProduct') {
          // ShapleyCAM: the gradient and the gradient of its product with A (H·A): two backward runs, counted as gradient is.
          return async (...args: unknown[]) => {
            await meter.before(true);
            const out = await fn.apply(target, args);
            meter.after(0, 2);
            return out;
          };
        }
        return fn.bind(target);
      },
    });
  }
}

/**
 * The passes a method will run, when known from its options (for a determinate progress bar):
 * SmoothGrad's samples, Integrated Gradients' steps + 1, Grid Saliency's iterations + 2,
 * Score-CAM's channels (at most maxChannels of the layer's K) + 1. null: unknown (the bar is indeterminate).
 */
export function expectedPasses(method: object, channels: number): number | null {
  const n = (key: string): number | undefined => {
    const v = (method as Record<string, unknown>)[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  switch ((method as { name?: string }).name) {
    case 'smoothgrad':
      return n('samples') ?? null;
    case 'integrated-gradients': {
      const steps = n('steps');
      return steps === undefined ? null : steps + 1;
    }
    case 'grid-saliency': {
      const it = n('iterations');
      // Two more: the score at the image and at the baseline.
      return it === undefined ? null : it + 2;
    }
    case 'score-cam': {
      const max = n('maxChannels');
      // One more: the baseline's score.
      return max === undefined ? null : Math.min(max, channels) + 1;
    }
    default:
      return null;
  }
}
