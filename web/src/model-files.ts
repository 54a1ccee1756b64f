/**
 * A model from files the user chose together: a TF.js model.json + its weight files, or one
 * .onnx file. Messages say what is wrong: a missing weight file, weights that do not match the
 * manifest (tfjs itself reports the latter late and cryptically, or not at all), an empty or
 * ambiguous choice.
 */
import type * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../src/errors.js';
import { artifactsFromParts, type ModelJson } from '../../src/engine/tfjs/model-json.js';
import { checkWeightBytes as checkManifestBytes } from '../../src/engine/tfjs/weights-check.js';

/** The part of a File this module reads (so tests can pass plain objects). */
export interface FileLike {
  name: string;
  size: number;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const basename = (p: string) => p.split('/').pop() ?? p;

/** A file name or URL that names an ONNX model (a query or fragment after the name is ignored). */
export const isOnnxName = (name: string): boolean => /\.onnx$/i.test(name.split(/[?#]/)[0]);

/**
 * The .onnx model among the chosen files, or null when there is none (the files are then a
 * TF.js model). An .onnx model is opened alone: external-data files are not supported.
 */
export async function onnxFromFiles(files: FileLike[]): Promise<{ name: string; bytes: Uint8Array } | null> {
  const onnx = files.filter((f) => isOnnxName(f.name));
  if (onnx.length === 0) return null;
  if (onnx.length > 1)
    throw new SegGradCamError(`choose one .onnx model, not ${onnx.length} (${onnx.map((f) => f.name).join(', ')})`, 'file');
  const [file] = onnx;
  const others = files.filter((f) => f !== file);
  if (others.length > 0) {
    throw new SegGradCamError(
      `choose ${file.name} alone: a .onnx model is one file (models with external data files are not supported), not with ${others.map((f) => f.name).join(', ')}`,
      'file',
    );
  }
  if (file.size === 0) throw new SegGradCamError(`${file.name} is empty`, 'model');
  return { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
}

export async function modelFromFiles(files: FileLike[]): Promise<tf.io.ModelArtifacts> {
  const jsons = files.filter((f) => /\.json$/i.test(f.name));
  if (jsons.length !== 1) {
    throw new SegGradCamError(
      jsons.length === 0
        ? 'no model.json among the chosen files: choose the model.json together with its weight files'
        : `choose one model.json, not ${jsons.length} (${jsons.map((f) => f.name).join(', ')})`,
      'file',
    );
  }
  const jsonFile = jsons[0];
  let json: ModelJson;
  try {
    json = JSON.parse(await jsonFile.text()) as ModelJson;
  } catch {
    throw new SegGradCamError(`${jsonFile.name} is not valid JSON`, 'model');
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new SegGradCamError(`${jsonFile.name} is not a TF.js model.json (no modelTopology/weightsManifest)`, 'model');
  }
  const byName = new Map(files.filter((f) => f !== jsonFile).map((f) => [f.name, f]));
  const parts: Uint8Array[] = [];
  const missing: string[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const f = byName.get(basename(p));
      if (!f) missing.push(basename(p));
      else parts.push(new Uint8Array(await f.arrayBuffer()));
    }
  }
  if (missing.length > 0) {
    throw new SegGradCamError(
      `${jsonFile.name} needs the weight file${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: choose ${missing.length > 1 ? 'them' : 'it'} together with ${jsonFile.name}`,
      'file',
    );
  }
  return artifactsFromParts(json, parts);
}

/** The weight bytes must be exactly what the manifest describes (weight data in one buffer or several). */
export function checkWeightBytes(artifacts: tf.io.ModelArtifacts): void {
  const data = artifacts.weightData;
  const held = data == null ? 0 : Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
  checkManifestBytes(artifacts.weightSpecs ?? [], held, 'model.json');
}
