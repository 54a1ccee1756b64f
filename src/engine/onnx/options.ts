import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';

/** The parts of an onnxruntime module (onnxruntime-node or onnxruntime-web) the adapter uses. */
export interface OrtRuntime {
  /** How results name it, e.g. 'onnxruntime-node (cpu)' (default 'onnxruntime'). */
  readonly name?: string;
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensor;
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): OrtTensor;
  };
}

export interface OnnxAdapterOptions {
  /** Input size, when the model's input has free height or width. */
  height?: number;
  width?: number;
  /** The model output to explain (default: the first). */
  outputName?: string;
  /** Passed to every ONNX Runtime session (default: all graph optimisations). */
  sessionOptions?: InferenceSession.SessionOptions;
  /**
   * What a forward pass caches: 'all' (every layer and every tensor a backward pass reads: any
   * layer's gradient then runs only the backward ops) or a list of layers and what their
   * backward graphs read (a cheaper forward; other layers' gradients run the fused forward +
   * backward graph once, then are cached; `activation()` of an uncached layer throws until then).
   */
  cacheLayers?: 'all' | string[];
  /**
   * A forward pass asked for one layer's gradient keeps what that layer's backward part reads
   * (so a second region on the same image runs the backward part alone) only when it holds at
   * most this many bytes (default DEFAULT_CACHE_BYTES); past it, the pass keeps the logits and
   * the layer, and a second region runs the forward and backward graph again. At 1024x1024 the
   * backward part of a nested U-Net reads GBs of decoder activations (docs/onnx.md).
   */
  cacheBytes?: number;
  /** Layers whose compiled gradient sessions are kept (default 8). */
  maxCompiledLayers?: number;
  /** Cotangents stacked per backward run in gradientBatch (default 4: larger stacks outgrow the caches). */
  maxStack?: number;
  /**
   * Run backward parts on a window around the region's support when the graph allows it and the
   * window is at most this fraction of the logits' area (default 0.75; 0 turns windows off).
   * The numbers are the same as on the whole map (see ./window.ts).
   */
  windowMaxArea?: number;
  /**
   * The spatial grid [h, w] of token layers ([1, N, C] with N = h·w, or h·w + 1 with a class
   * token), when the model's own maps do not settle it (./tokens.ts).
   */
  grid?: [number, number];
  /**
   * How the shapes of the model's tensors are learnt at load: 'infer' (default: ONNX Runtime's
   * shape inference, the model is not run; the probe where that leaves a shape unknown) or
   * 'probe' (one run of the model on zeros). See ./infer-shapes.ts.
   */
  shapes?: 'infer' | 'probe';
}

/** The default cacheBytes: 256 MiB. */
export const DEFAULT_CACHE_BYTES = 256 * 2 ** 20;

/**
 * Session defaults. Spinning is off: every session has its own intra-op thread pool, and a pool
 * that keeps spinning after its run steals a core from the next session's run — a forward run
 * followed by a backward run took ~1.8x the sum of the two alone on 2 cores (scratch measurement,
 * docs/onnx.md); without spinning a lone run is as fast.
 */
export const DEFAULT_SESSION_OPTIONS: InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  logSeverityLevel: 3,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
