import * as tf from '@tensorflow/tfjs';
import type { BiasGradients, Objective, OutputInfo } from '../contract.js';
import { objectiveScore } from './objective.js';

/**
 * Guided backpropagation and FullGrad on an engine that can run its model in TF.js with two hooks (the LayersModel's
 * executor, the ONNX graph run on its initializers): `relu` stands in for every ReLU, and `biased` sees every biased
 * layer's output z before its activation (with the bias, broadcast along z's channel axis) and returns it to go on.
 */
export interface RunHooks {
  relu?(x: tf.Tensor): tf.Tensor;
  /**
   * The same for an engine that cannot take a ReLU apart from the op it is fused into: an identity on the ReLU's output
   * whose backward keeps only positive gradients (the op's own backward then masks by the output being positive).
   */
  reluOutput?(y: tf.Tensor): tf.Tensor;
  /** `activation` (default 'linear'): z is the output of that activation of the biased value (relu, relu6, elu, sigmoid, tanh). */
  biased?(layer: string, z: tf.Tensor, bias: tf.Tensor, activation?: string): tf.Tensor;
}

/** Activations `biased` can see through: the derivative from the output y. */
export const BIASED_ACTIVATIONS = ['linear', '', 'relu', 'relu6', 'elu', 'sigmoid', 'tanh'];

/** ∂/∂z of an activation y = f(z), applied to dy, from y. */
function activationBackward(activation: string, dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  switch (activation) {
    case 'relu':
      return tf.mul(dy, tf.step(y, 0));
    case 'relu6':
      return tf.mul(dy, tf.mul(tf.step(y, 0), tf.step(tf.sub(6, y), 0)));
    case 'elu':
      return tf.mul(dy, tf.where(tf.greater(y, 0), tf.onesLike(y), tf.add(y, 1)));
    case 'sigmoid':
      return tf.mul(dy, tf.mul(y, tf.sub(1, y)));
    case 'tanh':
      return tf.mul(dy, tf.sub(1, tf.square(y)));
    default:
      return dy;
  }
}

/** An identity whose backward passes only positive gradients. */
const positiveGradient = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.relu(dy),
})) as (y: tf.Tensor) => tf.Tensor;

/** The model's logits for an input [1, H, W, C], channels last ([1, H, W, C] or [1, C]), run with the hooks. */
export type HookedRun = (input: tf.Tensor4D, hooks: RunHooks) => tf.Tensor;

/** ReLU whose backward passes dy only where the input is positive and dy is positive (Springenberg et al. 2015). */
export const guidedRelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.relu(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(tf.step(saved[0], 0), tf.step(dy, 0))),
  };
}) as (x: tf.Tensor) => tf.Tensor;

/** ∂S/∂x with every ReLU guided; the caller owns it. */
export function guidedInputGradient(run: HookedRun, input: tf.Tensor4D, objective: Objective, output: OutputInfo): tf.Tensor4D {
  return tf.tidy(() =>
    tf.grad((x: tf.Tensor) => objectiveScore(run(x as tf.Tensor4D, { relu: guidedRelu, reluOutput: positiveGradient }), objective, output))(
      input,
    ),
  ) as tf.Tensor4D;
}

/**
 * ∂S/∂x and b ⊙ ∂S/∂z at every biased layer, in one backward pass: each biased output goes through an identity whose
 * backward records the cotangent it receives. `channelsLast` turns a recorded [1, K, h, w] term into [1, h, w, K]
 * (ONNX); terms of layers S does not depend on are not recorded.
 */
export function biasDecomposition(
  run: HookedRun,
  input: tf.Tensor4D,
  objective: Objective,
  output: OutputInfo,
  channelsLast: (t: tf.Tensor) => tf.Tensor = (t) => t,
): BiasGradients {
  const terms: Array<{ layer: string; term: tf.Tensor }> = [];
  // The bias goes in as an input and is saved: a tensor made during the forward pass (BatchNorm's effective bias) is
  // otherwise freed before the backward pass runs.
  const biased = (layer: string, z: tf.Tensor, bias: tf.Tensor, activation = 'linear'): tf.Tensor =>
    (
      tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const [v, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        save([b, v]);
        return {
          value: tf.clone(v),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const term = tf.tidy(() => channelsLast(tf.mul(activationBackward(activation, dy, saved[1]), saved[0])));
            terms.push({ layer, term: tf.keep(term) });
            return [dy, tf.zerosLike(saved[0])];
          },
        };
      }) as (v: tf.Tensor, b: tf.Tensor) => tf.Tensor
    )(z, bias);
  try {
    const { value, grad } = tf.tidy(() =>
      tf.valueAndGrad((x: tf.Tensor) => objectiveScore(run(x as tf.Tensor4D, { biased }), objective, output))(input),
    );
    const score = value.dataSync()[0];
    value.dispose();
    return { score, inputGradient: grad as tf.Tensor4D, biasTerms: terms.reverse() };
  } catch (err) {
    tf.dispose(terms.map((t) => t.term));
    throw err;
  }
}
