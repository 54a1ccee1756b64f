import { SegGradCamError } from '../errors.js';
import { createMethod, isModelMethod, type CamMethod, type Method, type MethodOptions } from '../methods/index.js';
import { augmentations } from '../postprocess/augment.js';
import type { ExplainRequest } from './types.js';

/** The method a request names (or carries). */
export function methodOf(request: ExplainRequest): Method {
  if (typeof request.method === 'object') {
    if (request.negative) throw new SegGradCamError('negative applies to a method given by name (set it on the method object)', 'usage');
    return request.method;
  }
  return createMethod(request.method ?? 'seg-grad-cam', methodOptionsOf(request));
}

/** The request's method options, with `negative` copied in when the request sets it. */
export function methodOptionsOf(request: ExplainRequest): MethodOptions {
  const options = request.methodOptions ?? {};
  return request.negative === undefined ? options : { ...options, negative: request.negative };
}

/**
 * Whether a request is a plain gradient CAM: a CAM method that reads ∂S/∂A, at one layer, on
 * the image alone (no augmentation). Its map then comes straight from one layer's A and ∂S/∂A,
 * so an engine can take that gradient during the forward pass (priming), or for several regions
 * or layers in one backward pass (explainMany, explainLayers).
 */
export function isPlainGradientCam(method: Method, request: ExplainRequest): method is CamMethod {
  if (isModelMethod(method) || !method.usesGradients) return false;
  if (request.layers && request.layers.length > 1) return false;
  const variants = augmentations(request.augment);
  return variants.length === 1 && variants[0].identity;
}
