import * as tf from '@tensorflow/tfjs';
import type { Objective, OutputInfo } from '../contract.js';
import { objectiveScores } from '../tfjs/objective.js';

/**
 * S for each of B replacements of node `layer`'s output (`activations` [B, …], the caller's): the model is
 * executed from that node on, fed with the replacement and, tiled to the batch, the cached values of the nodes
 * that cross the cut (`feeds`: read downstream, computed upstream). The logits are read before any final
 * softmax/sigmoid. Batches larger than `maxBatch` run in chunks. `ForwardPass.scoresWithActivations` of the
 * GraphModel engine.
 */
export async function graphReplacedScores(
  model: tf.GraphModel,
  cache: Map<string, tf.Tensor>,
  layer: string,
  feeds: string[],
  logitsNode: string,
  activations: tf.Tensor4D,
  objective: Objective,
  output: OutputInfo,
  maxBatch: number,
): Promise<Float32Array> {
  const total = activations.shape[0];
  const out = new Float32Array(total);
  for (let start = 0; start < total; start += maxBatch) {
    const b = Math.min(maxBatch, total - start);
    const scores = tf.tidy(() => {
      const a = b === total ? activations : tf.slice(activations, [start, 0, 0, 0], [b, -1, -1, -1]);
      const map: tf.NamedTensorMap = { [layer]: a };
      for (const n of feeds) {
        const t = cache.get(n) as tf.Tensor;
        map[n] = b === 1 ? t : tf.tile(t, [b, ...t.shape.slice(1).map(() => 1)]);
      }
      const logits = layer === logitsNode ? a : (model.execute(map, logitsNode) as tf.Tensor);
      return objectiveScores(logits, objective, output);
    });
    try {
      out.set((await scores.data()) as Float32Array, start);
    } finally {
      scores.dispose();
    }
  }
  return out;
}
