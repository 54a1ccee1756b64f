/**
 * seg-grad-cam: explain what a semantic-segmentation network looks at (Seg-Grad-CAM,
 * Vinogradova, Dibrov & Myers, AAAI 2020) on TensorFlow.js. Browser-safe entry point;
 * Node file helpers live in 'seg-grad-cam/node'.
 */
export { Explainer, type ExplainRequest, type Explanation, type ExplainerOptions, type Prediction } from './explain.js';
export * from './region/region.js';
export { regionObjective, classCount, type ScoreKind } from './region/objective.js';
export * from './methods/index.js';
export {
  INPUT_LAYER,
  type ModelAdapter,
  type ForwardPass,
  type LayerInfo,
  type OutputInfo,
  type Objective,
  type LayerGradient,
  type BatchGradient,
} from './engine/contract.js';
export { LayersModelAdapter } from './engine/tfjs-layers/adapter.js';
export { GraphModelAdapter } from './engine/tfjs-graph/adapter.js';
export { findBottleneck } from './engine/bottleneck.js';
export { loadModel, adapterFromArtifacts, type LoadOptions } from './engine/tfjs/load.js';
export { camToHeatmap, normalizeInPlace } from './postprocess/heatmap.js';
export { imageToInput, type InputOptions } from './preprocess.js';
export { explanationFigure, regionOnImage, type FigureOptions } from './figure.js';
export * as render from './render/index.js';
export { SegGradCamError, type ErrorCode } from './errors.js';
export { createImage, type RgbaImage } from './image.js';
export { setupBackend, type BackendName } from './backend/index.js';
