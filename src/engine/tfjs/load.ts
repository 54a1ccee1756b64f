import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../../errors.js';
import type { ModelAdapter } from '../contract.js';
import { GraphModelAdapter } from '../tfjs-graph/adapter.js';
import { LayersModelAdapter } from '../tfjs-layers/adapter.js';

export interface LoadOptions {
  /** GraphModel only: the node to explain instead of the signature's output. */
  outputNode?: string;
}

/**
 * Loads a TF.js model (layers or graph format) from a URL or an IOHandler — the browser path.
 * In Node use `loadModelFile` from './load-node.js'.
 */
export async function loadModel(source: string | tf.io.IOHandler, options: LoadOptions = {}): Promise<ModelAdapter> {
  const handler = typeof source === 'string' ? tf.io.browserHTTPRequest(source) : source;
  let artifacts: tf.io.ModelArtifacts | undefined;
  try {
    artifacts = await handler.load?.();
  } catch (err) {
    const where = typeof source === 'string' ? source : 'the model source';
    throw new SegGradCamError(`cannot load the model from ${where}: ${(err as Error).message.split('\n')[0]}`, 'model');
  }
  if (!artifacts) throw new SegGradCamError('the model source cannot be read (no load method)', 'model');
  return adapterFromArtifacts(artifacts, options);
}

/** Builds the right adapter for model artifacts (model.json topology + weights). */
export async function adapterFromArtifacts(artifacts: tf.io.ModelArtifacts, options: LoadOptions = {}): Promise<ModelAdapter> {
  const topology = artifacts.modelTopology as Record<string, unknown> | undefined;
  if (!topology) throw new SegGradCamError('model.json has no modelTopology', 'model');
  const isGraph = artifacts.format === 'graph-model' || Array.isArray((topology as { node?: unknown }).node);
  const problem = isGraph ? graphTopologyProblem(topology) : layersTopologyProblem(topology);
  if (problem) throw new SegGradCamError(`the model cannot be loaded: ${problem}`, 'model');
  const memory = tf.io.fromMemory(artifacts);
  try {
    if (isGraph) return new GraphModelAdapter(await tf.loadGraphModel(memory), options);
    return new LayersModelAdapter(await tf.loadLayersModel(memory));
  } catch (err) {
    if (err instanceof SegGradCamError) throw err;
    // TF.js messages run over several lines (advice on custom layers): keep the first.
    const first = String((err as Error)?.message ?? err)
      .split('\n')[0]
      .replace(/ This may be due to.*$/, '');
    // A JS TypeError inside TF.js means it met a field it expected and did not find.
    const malformed = err instanceof TypeError ? 'model.json is malformed (TF.js: ' + first + ')' : first;
    throw new SegGradCamError(`the model cannot be loaded: ${malformed}`, 'model');
  }
}

/** What TF.js needs of a graph topology: a list of nodes. */
function graphTopologyProblem(topology: Record<string, unknown>): string | null {
  return Array.isArray(topology.node) ? null : `a graph model's modelTopology.node must be a list of nodes (got ${typeof topology.node})`;
}

/** What TF.js needs of a layers topology, checked first so that a malformed one is named in one line. */
function layersTopologyProblem(topology: Record<string, unknown>): string | null {
  const model = (topology.model_config ?? topology) as { class_name?: unknown; config?: unknown } | null;
  if (typeof model?.class_name !== 'string' || typeof model.config !== 'object' || model.config === null)
    return "modelTopology is not a Keras model config (it needs 'class_name' and 'config')";
  const layers = Array.isArray(model.config) ? model.config : (model.config as { layers?: unknown }).layers;
  if (!Array.isArray(layers))
    return `modelTopology's config.layers must be a list of layers (got ${layers === undefined ? 'none' : typeof layers})`;
  return null;
}
