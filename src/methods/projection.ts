import * as tf from '@tensorflow/tfjs';
import { firstComponent } from './eigen-cam.js';

/**
 * How the arbitrary sign of a principal component is fixed: 'mean' orients it along the mean row
 * (v · x̄ ≥ 0, as our Eigen-CAM); 'extreme' flips the projection when |min| > |max| (Seg-Eigen-CAM's
 * sign correction, Chung & Ying 2025, Eq. 13; also what scikit-learn's svd_flip does to a single component).
 */
export type ComponentSign = 'mean' | 'extreme';

/**
 * x [1, h, w, K] as an (h·w) × K matrix (rows = positions), columns centred, projected on its first
 * principal component v (the top right singular vector of the centred matrix), as pytorch-grad-cam's
 * get_2d_projection. Returns the signed projection [h, w] and v [K]; the caller owns both.
 */
export function firstComponentProjection(x: tf.Tensor4D, sign: ComponentSign): { projection: tf.Tensor2D; component: tf.Tensor1D } {
  const [, h, w, k] = x.shape;
  const { centred, covariance, mean } = tf.tidy(() => {
    const rows = x.reshape([h * w, k]);
    const m = tf.mean(rows, 0);
    const c = tf.sub(rows, m);
    return { centred: c, covariance: tf.matMul(c, c, true, false), mean: m };
  });
  try {
    const v = firstComponent(covariance.dataSync(), k, mean.dataSync());
    const projected = tf.tidy(() => tf.matMul(centred, tf.tensor2d(v, [k, 1])).reshape([h, w]));
    if (sign === 'extreme' && flips(projected.dataSync())) {
      projected.dispose();
      for (let i = 0; i < k; i++) v[i] = -v[i];
      return {
        projection: tf.tidy(() => tf.matMul(centred, tf.tensor2d(v, [k, 1])).reshape([h, w]) as tf.Tensor2D),
        component: tf.tensor1d(v),
      };
    }
    return { projection: projected as tf.Tensor2D, component: tf.tensor1d(v) };
  } finally {
    tf.dispose([centred, covariance, mean]);
  }
}

/** Whether |min| > |max| (the extreme value of a projection is negative). */
export function flips(values: ArrayLike<number>): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  return Math.abs(lo) > Math.abs(hi);
}

/**
 * A CAM that projects a per-element feature X(A, ∂S/∂A) [1, h, w, K] on its first principal
 * component (ReLU of the projection, or of its negation for the negative map); the weights are the
 * component. Subclasses say only what X is and how the component's sign is fixed.
 */
export abstract class ProjectedCam {
  abstract readonly name: string;
  abstract readonly sign: ComponentSign;
  readonly usesGradients = true;
  readonly negative: boolean;

  constructor(options: { negative?: boolean } = {}) {
    this.negative = options.negative ?? false;
  }

  abstract features(activations: tf.Tensor4D, gradients: tf.Tensor4D): tf.Tensor4D;

  compute(activations: tf.Tensor4D, gradients: tf.Tensor4D): { cam: tf.Tensor2D; weights: tf.Tensor1D } {
    const x = tf.tidy(() => this.features(activations, gradients));
    const { projection, component } = firstComponentProjection(x, this.sign);
    x.dispose();
    const cam = tf.tidy(() => tf.relu(this.negative ? tf.neg(projection) : projection) as tf.Tensor2D);
    projection.dispose();
    return { cam, weights: component };
  }
}
