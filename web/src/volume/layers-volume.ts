/**
 * 3-D TF.js LayersModels (model.json + weight files; Conv3D, MaxPooling3D, UpSampling3D, …) in the
 * volume page: the library's LayersVolumeModel (src/engine/tfjs-layers/volume.ts, channels first
 * at its boundary) seen through the ONNX volume model's surface that explainVolume and the
 * sliding-window steps call — layers(), resolve(), analysis.shape(), predict(), gradient(),
 * dispose(). Nothing is computed here: every value is the library's.
 */
import * as tf from '@tensorflow/tfjs';
import { LayersVolumeModel } from '../../../src/engine/tfjs-layers/volume.js';
import { SegGradCamError } from '../../../src/errors.js';
import type { OnnxVolumeModel } from '../../../src/volume/onnx-volume.js';

/** A LayersModel's files: one model.json and its weight files (names as in its weightsManifest). */
export interface LayersFiles {
  kind: 'layers';
  files: Array<{ bytes: Uint8Array; name: string }>;
}

/** Whether a URL names a TF.js model.json. */
export const isLayersUrl = (url: string) => /\.json$/i.test(url.split(/[?#]/)[0]);

/** The volume-model surface of a LayersVolumeModel. */
export function asVolumeModel(m: LayersVolumeModel): OnnxVolumeModel {
  const shapes = new Map(m.layers().map((l) => [l.name, l.shape]));
  const resolve = (layer: string): string => {
    if (!shapes.has(layer))
      throw new SegGradCamError(`unknown layer '${layer}'; the model's volume layers: ${[...shapes.keys()].join(', ')}`, 'layer');
    return layer;
  };
  const surface = {
    inputDims: m.inputDims,
    logitsDims: m.logitsDims,
    logitsName: m.logitsName,
    activation: m.activation,
    layers: () => m.layers(),
    resolve,
    analysis: { shape: (layer: string) => [...(shapes.get(resolve(layer)) as number[])] },
    predict: (x: Float32Array) => m.predict(x),
    gradient: (x: Float32Array, layer: string, cotangent: Float32Array) => m.gradient(x, layer, cotangent),
    dispose: () => {
      m.model.dispose();
      return Promise.resolve();
    },
  };
  return surface as unknown as OnnxVolumeModel;
}

/** Loads a 3-D LayersModel from its files or a model.json URL. */
export async function loadLayersVolumeModel(
  source: LayersFiles | { kind: 'url'; url: string },
): Promise<{ model: OnnxVolumeModel; name: string }> {
  let name: string;
  let handler: tf.io.IOHandler | string;
  if (source.kind === 'url') {
    name = decodeURIComponent(source.url.split(/[?#]/)[0].split('/').pop() ?? source.url);
    handler = source.url;
  } else {
    const json = source.files.find((f) => /\.json$/i.test(f.name));
    if (!json) throw new SegGradCamError('a TF.js model needs its model.json', 'model');
    name = json.name;
    const file = (f: { bytes: Uint8Array; name: string }) => new File([f.bytes as Uint8Array<ArrayBuffer>], f.name);
    handler = tf.io.browserFiles([file(json), ...source.files.filter((f) => f !== json).map(file)]);
  }
  let loaded: tf.LayersModel;
  try {
    loaded = await tf.loadLayersModel(handler);
  } catch (err) {
    throw new SegGradCamError(
      `${name}: TF.js cannot load it as a LayersModel: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`,
      'model',
    );
  }
  try {
    return { model: asVolumeModel(new LayersVolumeModel(loaded)), name };
  } catch (err) {
    loaded.dispose();
    if (err instanceof SegGradCamError) throw new SegGradCamError(`${name}: ${err.message}`, err.code);
    throw err;
  }
}
