import * as tf from '@tensorflow/tfjs';
import type { Objective, OutputInfo } from '../contract.js';
import { objectiveScores } from '../tfjs/objective.js';
import type { LayersGraph } from './graph.js';

/**
 * S for each of B replacements of tensor `id` (`activations` [B, …]): only the steps downstream of it run, the
 * tensors they read from outside (the skips) taken from the cached pass and tiled to the batch. The logits are
 * read before any final softmax/sigmoid, as everywhere. `ForwardPass.scoresWithActivations` of the LayersModel engine.
 */
export async function replacedScores(
  graph: LayersGraph,
  cache: Map<number, tf.Tensor>,
  id: number,
  activations: tf.Tensor4D,
  objective: Objective,
  output: OutputInfo,
): Promise<Float32Array> {
  const b = activations.shape[0];
  const scores = tf.tidy(() => {
    const downstream = graph.downstreamOf(id);
    const known = new Map<number, tf.Tensor>();
    for (const other of graph.crossingInto(downstream, id)) {
      const t = cache.get(other) as tf.Tensor;
      known.set(other, b === 1 ? t : tf.tile(t, [b, ...t.shape.slice(1).map(() => 1)]));
    }
    known.set(id, activations);
    const logits = id === graph.outputId ? activations : graph.run(known, downstream, true).get(graph.outputId);
    if (!logits) throw new Error('internal: the model output was not computed');
    return objectiveScores(logits, objective, output);
  });
  try {
    return (await scores.data()) as Float32Array;
  } finally {
    scores.dispose();
  }
}
