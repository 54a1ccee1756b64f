import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { saveModelDir } from '../../src/unet/model-files.js';

/** Saves a LayersModel as model.json + weights.bin in a directory; returns the model.json path. */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<string> {
  await saveModelDir(model, dir, metadata);
  return join(dir, 'model.json');
}
