/** A LayersModel as model.json + weights.bin in the standard TF.js layout, with the training metadata. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io/files.js';
import { readModelArtifacts } from '../engine/tfjs/load-node.js';
import { CLASS_NAMES } from '../data/texture-mnist.js';
import type { TrainOptions } from './options.js';

/** Serialises a model to { model.json text, weights bytes } in the standard TF.js layout. */
export async function serializeModel(
  model: tf.LayersModel,
  metadata?: Record<string, unknown>,
  weightsFile = 'weights.bin',
): Promise<{ json: string; weights: Uint8Array }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts) throw new Error('model.save produced no artifacts');
  const data = artifacts.weightData;
  const joined = data === undefined ? new ArrayBuffer(0) : Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  const json = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs} (seg-grad-cam train)`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
    ...(metadata ? { userDefinedMetadata: metadata } : {}),
  };
  return { json: JSON.stringify(json), weights: new Uint8Array(joined) };
}

/** Writes model.json + weights.bin into `dir` (each atomically: weights first, so a model.json never points at missing weights). */
export async function saveModelDir(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { json, weights } = await serializeModel(model, metadata);
  await writeFileAtomic(join(dir, 'weights.bin'), weights);
  await writeFileAtomic(join(dir, 'model.json'), new TextEncoder().encode(json));
}

/** Loads a model.json + weights written by saveModelDir. */
export async function loadModelDir(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(join(dir, 'model.json'))));
}

/** userDefinedMetadata written into model.json: class names (read by the CLI) and the data recipe. */
export function modelMetadata(o: TrainOptions): Record<string, unknown> {
  if (o.dataset === 'bias')
    return {
      classNames: [...CLASS_NAMES],
      inputRange: [0, 1],
      dataset: {
        name: 'bias-tiles (seg-grad-cam)',
        arm: o.arm,
        size: o.size,
        seed: o.seed,
        biasDigit: o.biasDigit,
        biasClass: o.biasDigit + 1,
        biasTexture: o.biasTexture,
      },
    };
  return {
    classNames: [...CLASS_NAMES],
    inputRange: [0, 1],
    dataset: {
      name: 'texture-mnist (seg-grad-cam)',
      size: o.size,
      seed: o.seed,
      biasDigit: o.biasDigit,
      biasClass: o.biasDigit + 1,
      biasTexture: o.biasTexture,
      biasStrength: o.biasStrength,
      biasTextureAtZero: o.biasTextureAtZero,
    },
  };
}
