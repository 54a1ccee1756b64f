import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Saves a LayersModel as model.json + weights.bin in a directory (what tfjs-node's file:// would do). */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const bytes = data instanceof ArrayBuffer ? data : tf.io.CompositeArrayBuffer.join(data as ArrayBuffer[]);
      writeFileSync(join(dir, 'weights.bin'), new Uint8Array(bytes as ArrayBuffer));
      const json = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        userDefinedMetadata: metadata,
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return join(dir, 'model.json');
}
