import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { ModelAdapter } from '../contract.js';
import { adapterFromArtifacts, type LoadOptions } from './load.js';
import { artifactsFromParts, type ModelJson } from './model-json.js';
import { checkWeightBytes } from './weights-check.js';

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
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const file = resolve(dir, p);
      try {
        parts.push(await readFile(file));
      } catch {
        throw new SegGradCamError(`weights file not found: ${file} (listed in ${path})`, 'file');
      }
    }
  }
  const artifacts = artifactsFromParts(json, parts);
  checkWeightBytes(artifacts.weightSpecs ?? [], (artifacts.weightData as ArrayBuffer).byteLength, path);
  return artifacts;
}

export async function loadModelFile(path: string, options: LoadOptions = {}): Promise<ModelAdapter> {
  return adapterFromArtifacts(await readModelArtifacts(path), options);
}
