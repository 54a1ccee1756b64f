/**
 * A TF.js model.json and its weight files → ModelArtifacts. Browser-safe: the Node loader reads
 * the parts from disk, the explorer from the files a user chose.
 */
import type * as tf from '@tensorflow/tfjs';

/** The fields of a TF.js model.json that loading reads. */
export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
}

/** The artifacts of `json` with its weight files' bytes (in manifest order) joined into one buffer. */
export function artifactsFromParts(json: ModelJson, parts: readonly Uint8Array[]): tf.io.ModelArtifacts {
  const weightData = new Uint8Array(parts.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of parts) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? undefined,
    weightSpecs: (json.weightsManifest ?? []).flatMap((g) => g.weights),
    weightData: weightData.buffer,
    signature: json.signature as tf.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'],
    modelInitializer: json.modelInitializer as tf.io.ModelArtifacts['modelInitializer'],
  };
}
