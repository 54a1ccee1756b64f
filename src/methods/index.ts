import { SegGradCamError } from '../errors.js';
import { ClassActivationMap } from './cam.js';
import { EigenCam } from './eigen-cam.js';
import { GradCamPlusPlus } from './grad-cam-plus-plus.js';
import { GradientTimesInput } from './gradient-x-input.js';
import { GridSaliency, type GridSaliencyOptions } from './grid-saliency.js';
import { HiResCam } from './hires-cam.js';
import { IntegratedGradients, type IntegratedGradientsOptions } from './integrated-gradients.js';
import { LayerCam } from './layer-cam.js';
import { Lrp, type LrpOptions } from './lrp.js';
import type { Method } from './method.js';
import { GradientSaliency } from './saliency.js';
import { ScoreCam, type ScoreCamOptions } from './score-cam.js';
import { SegGradCam } from './seg-grad-cam.js';
import { SmoothGrad, type SmoothGradOptions } from './smoothgrad.js';
import { XGradCam } from './xgrad-cam.js';

export type { CamMethod, Method, MethodContext, MethodResult, ModelMethod } from './method.js';
export { ChannelWeightedCam, ElementWeightedCam, isModelMethod } from './method.js';
export { runMethod } from './run.js';
export type { Baseline } from './baseline.js';
export { SegGradCam } from './seg-grad-cam.js';
export {
  HiResCam,
  LayerCam,
  GradCamPlusPlus,
  XGradCam,
  EigenCam,
  ScoreCam,
  ClassActivationMap,
  GradientSaliency,
  GradientTimesInput,
  SmoothGrad,
  IntegratedGradients,
  GridSaliency,
  Lrp,
};
export { integratedGradients } from './integrated-gradients.js';
export { lrpRelevance, UnsupportedLayerError, LRP_LAYERS, type LrpRule } from './lrp.js';
export { UnsupportedOpError, LRP_GRAPH_OPS } from './lrp.js';

/** Options of every method by name; each method reads its own (see its options interface). */
export type MethodOptions = ScoreCamOptions & SmoothGradOptions & IntegratedGradientsOptions & GridSaliencyOptions & LrpOptions;
export type { ScoreCamOptions, SmoothGradOptions, IntegratedGradientsOptions, GridSaliencyOptions, LrpOptions };

const registry: Record<string, (options: MethodOptions) => Method> = {
  'seg-grad-cam': () => new SegGradCam(),
  'hires-cam': () => new HiResCam(),
  'grad-cam++': () => new GradCamPlusPlus(),
  'xgrad-cam': () => new XGradCam(),
  'layer-cam': () => new LayerCam(),
  'eigen-cam': () => new EigenCam(),
  'score-cam': (o) => new ScoreCam(o),
  cam: () => new ClassActivationMap(),
  saliency: () => new GradientSaliency(),
  'gradient-x-input': () => new GradientTimesInput(),
  smoothgrad: (o) => new SmoothGrad(o),
  'integrated-gradients': (o) => new IntegratedGradients(o),
  'grid-saliency': (o) => new GridSaliency(o),
  lrp: (o) => new Lrp(o),
};

export const methodNames = (): string[] => Object.keys(registry);

export function createMethod(name: string, options: MethodOptions = {}): Method {
  const make = registry[name];
  if (!make) throw new SegGradCamError(`unknown method '${name}'; valid methods: ${methodNames().join(', ')}`, 'usage');
  return make(options);
}
