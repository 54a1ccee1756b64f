import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { weightedCam, type MethodContext, type MethodResult, type ModelMethod, type NegativeOption } from './method.js';
import { positiveInteger } from './options.js';
import { cachedScore } from './score.js';

export interface AblationCamOptions extends NegativeOption {
  /** Ablated copies of the layer per model call (default 16). */
  batchSize?: number;
}

/**
 * Ablation-CAM (Desai & Ramaswamy 2020), gradient-free: for each channel k, the layer's cached output with A^k set
 * to zero runs through the rest of the model (the part before the layer is not re-run); the weight is the relative
 * drop w_k = (S − S_k) / S (the plain drop S − S_k when S = 0). The map: ReLU(Σ_k w_k A^k). Needs an engine that
 * can re-run the model after a layer (`ForwardPass.scoresWithActivations`); others get a typed refusal.
 */
export class AblationCam implements ModelMethod {
  readonly name = 'ablation-cam';
  readonly target = 'layer';
  readonly batchSize: number;
  readonly negative: boolean;

  constructor(options: AblationCamOptions = {}) {
    this.batchSize = positiveInteger(options.batchSize ?? 16, 'batchSize');
    this.negative = options.negative ?? false;
  }

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const { pass, layer, objective } = ctx;
    if (!pass.scoresWithActivations)
      throw new SegGradCamError(
        `ablation-cam re-runs the model after the layer, which the ${ctx.adapter.kind} engine does not offer; score-cam is gradient-free too`,
        'model',
      );
    const replaced = pass.scoresWithActivations.bind(pass);
    await pass.cacheActivations?.([layer.name]);
    const A = pass.activation(layer.name) as tf.Tensor4D;
    const k = A.shape[3];
    // S through the same path as the ablations, so w_k is exactly 0 for a channel that does not matter.
    const s = (await replaced(layer.name, A, objective))[0];
    const weights = new Float32Array(k);
    for (let c0 = 0; c0 < k; c0 += this.batchSize) {
      const n = Math.min(this.batchSize, k - c0);
      const batch = tf.tidy(() => {
        const keep = new Float32Array(n * k).fill(1);
        for (let i = 0; i < n; i++) keep[i * k + c0 + i] = 0;
        return tf.mul(A, tf.tensor4d(keep, [n, 1, 1, k])) as tf.Tensor4D;
      });
      const scores = await replaced(layer.name, batch, objective).finally(() => batch.dispose());
      for (let i = 0; i < n; i++) weights[c0 + i] = s === 0 ? s - scores[i] : (s - scores[i]) / s;
    }
    const w = tf.tensor1d(weights);
    return { cam: weightedCam(A, w, this.negative), weights: w, score: cachedScore(ctx) };
  }
}
