import * as tf from '@tensorflow/tfjs';
import { INPUT_LAYER, type ForwardPass, type LayerInfo, type ModelAdapter, type Objective } from '../engine/contract.js';
import type { RgbaImage } from '../image.js';
import { runMethod, type Method } from '../methods/index.js';
import { flipObjective, type Augmentation } from '../postprocess/augment.js';
import { camToHeatmap, normalizeInPlace, type Normalization } from '../postprocess/heatmap.js';
import { checkTensor, checkedPass } from './numeric.js';

/** A CAM as data, and its heatmap on the image. */
export interface CamMaps {
  cam: Float32Array;
  camWidth: number;
  camHeight: number;
  /** camToHeatmap's result: the heatmap in [0, 1], the CAM's maximum, and whether it was all zero. */
  heatmap: Float32Array;
  max: number;
  empty: boolean;
}

/**
 * Runs the method per layer and augmentation; the raw maps of the augmentations are averaged
 * (flips undone). `pass` is the original image's; the augmented images get passes of their own,
 * freed here. Gradients and scores are checked for NaN/Inf (see ./numeric.ts).
 */
export async function averagedCams(
  adapter: ModelAdapter,
  pass: ForwardPass,
  method: Method,
  layers: LayerInfo[],
  objective: Objective,
  variants: Augmentation[],
  inputRange: [number, number],
): Promise<{ cams: tf.Tensor2D[]; weights: tf.Tensor1D | null; scoreValue: number }> {
  const sums: Array<tf.Tensor2D | null> = layers.map(() => null);
  // Channel weights only mean something for one map of one layer.
  const keepWeights = variants.length === 1 && layers.length === 1;
  let weights: tf.Tensor1D | null = null;
  let scoreValue = Number.NaN;
  try {
    for (const v of variants) {
      let vPass = pass;
      if (!v.identity) {
        const x = v.apply(pass.activation(INPUT_LAYER) as tf.Tensor4D, inputRange);
        vPass = await adapter.forward(x).finally(() => x.dispose());
      }
      try {
        if (vPass !== pass) checkTensor(vPass.output, `the logits of the augmented image (${v.name})`);
        const checked = checkedPass(vPass);
        const vObjective = v.flip ? flipObjective(objective, adapter.output) : objective;
        for (let i = 0; i < layers.length; i++) {
          // The input as a tensor only for the methods that read it (a 1024² image: ~0.1 s to lay out).
          const r = await runMethod(method, {
            adapter,
            pass: checked,
            get input() {
              return vPass.activation(INPUT_LAYER) as tf.Tensor4D;
            },
            objective: vObjective,
            inputRange,
            layer: layers[i],
          });
          let cam = r.cam;
          if (v.flip) {
            cam = tf.reverse(r.cam, 1);
            r.cam.dispose();
          }
          const prev = sums[i];
          sums[i] = prev ? (tf.add(prev, cam) as tf.Tensor2D) : cam;
          if (prev) tf.dispose([prev, cam]);
          if (v.identity && i === 0) scoreValue = r.score;
          if (keepWeights) weights = r.weights;
          else r.weights?.dispose();
        }
      } finally {
        if (vPass !== pass) vPass.dispose();
      }
    }
    const cams = sums.map((s) => {
      if (variants.length === 1) return s as tf.Tensor2D;
      const mean = tf.div(s as tf.Tensor2D, variants.length) as tf.Tensor2D;
      s?.dispose();
      return mean;
    });
    return { cams, weights, scoreValue };
  } catch (err) {
    tf.dispose(sums.filter((s): s is tf.Tensor2D => s !== null));
    weights?.dispose();
    throw err;
  }
}

/** A raw CAM and its heatmap on the image (scaled to [0, 1] by `normalize`, default 'max'). */
export function camMaps(cam: tf.Tensor2D, image: RgbaImage, normalize?: Normalization): CamMaps {
  const [camHeight, camWidth] = cam.shape;
  return { cam: cam.dataSync().slice() as Float32Array, camWidth, camHeight, ...camToHeatmap(cam, image.width, image.height, normalize) };
}

/** Several layers: the mean of their [0, 1] heatmaps (each, and the mean, scaled by `normalize`), which becomes the "cam" (at the image's size). */
export function meanOfHeatmaps(cams: tf.Tensor2D[], image: RgbaImage, normalize?: Normalization): CamMaps {
  const mean = new Float32Array(image.width * image.height);
  for (const cam of cams) {
    const h = camToHeatmap(cam, image.width, image.height, normalize).heatmap;
    for (let i = 0; i < mean.length; i++) mean[i] += h[i] / cams.length;
  }
  // The copy is taken before normalizeInPlace scales `mean` (which becomes the heatmap).
  return { cam: mean.slice(), camWidth: image.width, camHeight: image.height, ...normalizeInPlace(mean, normalize) };
}

/** A tensor's values (a copy), the tensor freed; null stays null. */
export function takeData(t: tf.Tensor | null): Float32Array | null {
  if (!t) return null;
  const data = t.dataSync().slice() as Float32Array;
  t.dispose();
  return data;
}
