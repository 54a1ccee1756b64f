import * as tf from '@tensorflow/tfjs';
import { objectiveScore } from '../engine/tfjs/objective.js';
import type { MethodContext } from './method.js';

/** S at the pass's cached output (no new model call). */
export function cachedScore(ctx: MethodContext): number {
  return tf.tidy(() => objectiveScore(ctx.pass.output, ctx.objective, ctx.adapter.output).dataSync()[0]);
}
