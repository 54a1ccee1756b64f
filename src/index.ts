/**
 * seg-grad-cam: explain what a semantic-segmentation network looks at (Seg-Grad-CAM,
 * Vinogradova, Dibrov & Myers, AAAI 2020) on TensorFlow.js and ONNX Runtime. Browser-safe entry
 * point; Node helpers (paths on disk, image files) live in 'seg-grad-cam/node'. Everything not
 * exported here is internal.
 */
import { box, classRegion, mask, object, pixel, pixels, whole } from './region/region.js';

// Models and explanations.
export { openModel, type ModelSource, type OpenOptions } from './engine/open.js';
export type { ModelAdapter, LayerInfo } from './engine/contract.js';
export { Explainer, type ExplainRequest, type Explanation, type ExplainerOptions, type Prediction } from './explain.js';

// Regions M.
export { box, classRegion, mask, object, pixel, pixels, whole };
export type { Region } from './region/region.js';
/** The region constructors in one namespace, for code that prefers `regions.object(x, y)` to a bare `object`. */
export const regions = { pixel, pixels, box, mask, classRegion, object, whole } as const;

// Methods.
export { methodNames, createMethod, type Method, type MethodOptions } from './methods/index.js';

// Errors.
export { SegGradCamError, type ErrorCode } from './errors.js';

// Backend, images, figures.
export { setupBackend, type BackendName } from './backend/index.js';
export { createImage, type RgbaImage } from './image.js';
export { imageToInput } from './preprocess.js';
export { explanationFigure, type FigureOptions as ExplanationFigureOptions } from './figure.js';
export * as render from './render/index.js';
