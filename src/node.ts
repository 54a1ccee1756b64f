/** Node entry point ('seg-grad-cam/node'): models and images from disk. */
import { Explainer, type ExplainerOptions } from './explain.js';
import { openModelSource, type NodeModelSource, type NodeOpenOptions } from './engine/open-node.js';

export { openModel, type NodeModelSource, type NodeOpenOptions, type NodeOrtChoice } from './engine/open-node.js';
export { readImageFile, writeImageFile, readMaskFile } from './io/files.js';
export { readLabelsFile } from './io/labels-node.js';

/**
 * One call from a model to an Explainer: a model.json (TF.js) or an .onnx file (ONNX Runtime) by
 * path, a URL, or the bytes. Class names and input range come from the model's metadata unless given.
 */
export async function loadExplainer(source: NodeModelSource, options: ExplainerOptions & NodeOpenOptions = {}): Promise<Explainer> {
  const { adapter, metadata } = await openModelSource(source, options);
  try {
    return new Explainer(adapter, {
      ...options,
      classNames: options.classNames ?? metadata.classNames,
      inputRange: options.inputRange ?? metadata.inputRange,
    });
  } catch (err) {
    adapter.dispose();
    throw err;
  }
}
