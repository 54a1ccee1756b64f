import * as tf from '@tensorflow/tfjs';
import type { MethodContext, MethodResult, ModelMethod } from './method.js';
import { guidedGradient } from './guided-backprop.js';
import { SegGradCam } from './seg-grad-cam.js';

/**
 * Guided Grad-CAM (Selvaraju et al. 2017, *Grad-CAM*, §3.1): the guided-backpropagation map max_c |g_c| (g the guided
 * input gradient, ./guided-backprop.ts) times the layer's Seg-Grad-CAM map, upsampled bilinearly (half-pixel centres)
 * to the model input and divided by its maximum (pytorch-grad-cam multiplies by the [0, 1] heatmap too). The map is over the model input; the layer is the Grad-CAM's.
 */
export class GuidedGradCam implements ModelMethod {
  readonly name = 'guided-grad-cam';
  readonly target = 'layer';

  async explain(ctx: MethodContext): Promise<MethodResult> {
    const g = guidedGradient(ctx.adapter, ctx.input, ctx.objective, this.name);
    let gradients: { activations: tf.Tensor4D; gradients: tf.Tensor4D; score: number };
    try {
      gradients = await ctx.pass.gradient(ctx.layer.name, ctx.objective);
    } catch (err) {
      g.dispose();
      throw err;
    }
    const { activations, score } = gradients;
    const { cam: gradCam, weights } = new SegGradCam().compute(activations, gradients.gradients);
    const cam = tf.tidy(() => {
      const [, h, w] = g.shape;
      const up = tf.image.resizeBilinear(gradCam.reshape([1, ...gradCam.shape, 1]) as tf.Tensor4D, [h, w], false, true).reshape([h, w]);
      // Scaled to a maximum of 1 (the Grad-CAM heatmap; a zero map stays zero): the product keeps the guided map's units.
      const top = tf.max(up);
      const scaled = tf.where(tf.greater(top, 0), tf.div(up, tf.maximum(top, 1e-30)), tf.zerosLike(up));
      return tf.mul(scaled, tf.max(tf.abs(g), -1).reshape([h, w])) as tf.Tensor2D;
    });
    tf.dispose([g, activations, gradients.gradients, gradCam]);
    return { cam, weights, score };
  }
}
