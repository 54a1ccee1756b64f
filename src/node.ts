/** Node-only helpers: models and images from disk, atomic writes. */
import { Explainer, type ExplainerOptions } from './explain.js';
import { readModelArtifacts } from './engine/tfjs/load-node.js';
import { adapterFromArtifacts, type LoadOptions } from './engine/tfjs/load.js';
import { classNamesFromMetadata } from './io/labels.js';

export { readModelArtifacts, loadModelFile } from './engine/tfjs/load-node.js';
export { readImageFile, writeImageFile, writeFileAtomic, readMaskFile } from './io/files.js';
export { readLabelsFile } from './io/labels-node.js';

/** One call from a model.json on disk to an Explainer (class names from the model's metadata unless given). */
export async function loadExplainer(path: string, options: ExplainerOptions & LoadOptions = {}): Promise<Explainer> {
  const artifacts = await readModelArtifacts(path);
  const adapter = await adapterFromArtifacts(artifacts, options);
  const classNames = options.classNames ?? classNamesFromMetadata(artifacts.userDefinedMetadata);
  return new Explainer(adapter, { ...options, classNames });
}
