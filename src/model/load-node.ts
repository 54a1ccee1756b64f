import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { ModelAdapter } from './adapter.js';
import { adapterFromArtifacts, type LoadOptions } from './load.js';
import { checkWeightBytes } from './weights-check.js';

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
}

/** Reads a model.json and its weight files from disk (no tfjs-node needed). */
export async function readModelArtifacts(path: string): Promise<tf.io.ModelArtifacts> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new SegGradCamError(`model file not found: ${path}`, 'file');
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch {
    throw new SegGradCamError(`model file is not valid JSON: ${path}`, 'model');
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new SegGradCamError(`not a TF.js model.json (no modelTopology/weightsManifest): ${path}`, 'model');
  }
  const dir = dirname(resolve(path));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const file = resolve(dir, p);
      try {
        buffers.push(await readFile(file));
      } catch {
        throw new SegGradCamError(`weights file not found: ${file} (listed in ${path})`, 'file');
      }
    }
  }
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  checkWeightBytes(specs, total, path);
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    weightSpecs: specs,
    weightData: weightData.buffer,
    signature: json.signature as tf.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'],
    modelInitializer: json.modelInitializer as tf.io.ModelArtifacts['modelInitializer'],
  };
}

export async function loadModelFile(path: string, options: LoadOptions = {}): Promise<ModelAdapter> {
  return adapterFromArtifacts(await readModelArtifacts(path), options);
}
