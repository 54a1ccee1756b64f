import { SegGradCamError } from '../errors.js';
import { AblationCam, type AblationCamOptions } from './ablation-cam.js';
import { ClassActivationMap } from './cam.js';
import { EigenCam } from './eigen-cam.js';
import { EigenGradCam } from './eigen-grad-cam.js';
import { Fem, type FemOptions } from './fem.js';
import { FinerCam, type FinerCamOptions } from './finer-cam.js';
import { GradCamPlusPlus } from './grad-cam-plus-plus.js';
import { GradientTimesInput } from './gradient-x-input.js';
import { GridSaliency, type GridSaliencyOptions } from './grid-saliency.js';
import { HiResCam } from './hires-cam.js';
import { IntegratedGradients, type IntegratedGradientsOptions } from './integrated-gradients.js';
import { KernelShap, type KernelShapOptions } from './kernel-shap.js';
import { KpcaCam, type KpcaCamOptions } from './kpca-cam.js';
import { LayerCam } from './layer-cam.js';
import { Lrp, type LrpOptions } from './lrp.js';
import type { Method, NegativeOption } from './method.js';
import { Occlusion, type OcclusionOptions } from './occlusion.js';
import { Rise, type RiseOptions } from './rise.js';
import { GradientSaliency } from './saliency.js';
import { ScoreCam, type ScoreCamOptions } from './score-cam.js';
import { SegEigenCam } from './seg-eigen-cam.js';
import { SegGradCam } from './seg-grad-cam.js';
import { ShapleyCam } from './shapley-cam.js';
import { SmoothGrad, type SmoothGradOptions } from './smoothgrad.js';
import { XGradCam } from './xgrad-cam.js';
import { FullGrad } from './full-grad.js';
import { GuidedBackprop } from './guided-backprop.js';
import { GuidedGradCam } from './guided-grad-cam.js';

export type { CamMethod, Method, MethodContext, MethodResult, ModelMethod, NegativeOption } from './method.js';
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
  SegEigenCam,
  EigenGradCam,
  KpcaCam,
  Fem,
  AblationCam,
  FinerCam,
  Occlusion,
  Rise,
  FullGrad,
  GuidedBackprop,
  GuidedGradCam,
  ShapleyCam,
  KernelShap,
};
export { riseSaliency, randomMask, riseMask } from './rise.js';
export { finerObjective } from './finer-cam.js';
export type { ScoreCamVariant } from './score-cam.js';
export type { KpcaKernel } from './kpca-cam.js';
export { integratedGradients } from './integrated-gradients.js';
export { fullGradMap } from './full-grad.js';
export { lrpRelevance, UnsupportedLayerError, LRP_LAYERS, type LrpRule } from './lrp.js';
export { UnsupportedOpError, LRP_GRAPH_OPS } from './lrp.js';

/** Options of every method by name; each method reads its own (see its options interface). */
export type MethodOptions = ScoreCamOptions &
  SmoothGradOptions &
  IntegratedGradientsOptions &
  GridSaliencyOptions &
  LrpOptions &
  NegativeOption &
  FemOptions &
  KpcaCamOptions &
  AblationCamOptions &
  FinerCamOptions &
  OcclusionOptions &
  RiseOptions &
  KernelShapOptions;
export type {
  ScoreCamOptions,
  SmoothGradOptions,
  IntegratedGradientsOptions,
  GridSaliencyOptions,
  LrpOptions,
  FemOptions,
  KpcaCamOptions,
  AblationCamOptions,
  FinerCamOptions,
  OcclusionOptions,
  RiseOptions,
  KernelShapOptions,
};

/** Each method's constructor, and whether it has a negative map (`negative: true`: ReLU(−Σ …), what speaks against c in M). */
const registry: Record<string, { make: (options: MethodOptions) => Method; negative: boolean }> = {
  'seg-grad-cam': { make: (o) => new SegGradCam(o), negative: true },
  'hires-cam': { make: (o) => new HiResCam(o), negative: true },
  'grad-cam++': { make: (o) => new GradCamPlusPlus(o), negative: true },
  'xgrad-cam': { make: (o) => new XGradCam(o), negative: true },
  'layer-cam': { make: (o) => new LayerCam(o), negative: true },
  'eigen-cam': { make: () => new EigenCam(), negative: false },
  'score-cam': { make: (o) => new ScoreCam(o), negative: true },
  cam: { make: () => new ClassActivationMap(), negative: false },
  saliency: { make: () => new GradientSaliency(), negative: false },
  'gradient-x-input': { make: (o) => new GradientTimesInput(o), negative: true },
  smoothgrad: { make: (o) => new SmoothGrad(o), negative: false },
  'integrated-gradients': { make: (o) => new IntegratedGradients(o), negative: true },
  'grid-saliency': { make: (o) => new GridSaliency(o), negative: false },
  lrp: { make: (o) => new Lrp(o), negative: false },
  'seg-eigen-cam': { make: (o) => new SegEigenCam(o), negative: true },
  'eigen-grad-cam': { make: (o) => new EigenGradCam(o), negative: true },
  'kpca-cam': { make: (o) => new KpcaCam(o), negative: false },
  fem: { make: (o) => new Fem(o), negative: false },
  'ablation-cam': { make: (o) => new AblationCam(o), negative: true },
  'finer-cam': { make: (o) => new FinerCam(o), negative: true },
  occlusion: { make: (o) => new Occlusion(o), negative: true },
  rise: { make: (o) => new Rise(o), negative: false },
  'full-grad': { make: () => new FullGrad(), negative: false },
  'guided-backprop': { make: () => new GuidedBackprop(), negative: false },
  'guided-grad-cam': { make: () => new GuidedGradCam(), negative: false },
  'shapley-cam': { make: (o) => new ShapleyCam(o), negative: true },
  'kernel-shap': { make: (o) => new KernelShap(o), negative: true },
};

export const methodNames = (): string[] => Object.keys(registry);

/** Whether a method has a negative map (the `negative` option). */
export const hasNegativeMap = (name: string): boolean => registry[name]?.negative ?? false;

export function createMethod(name: string, options: MethodOptions = {}): Method {
  const entry = registry[name];
  if (!entry) throw new SegGradCamError(`unknown method '${name}'; valid methods: ${methodNames().join(', ')}`, 'usage');
  if (options.negative && !entry.negative) {
    const some = methodNames().filter(hasNegativeMap);
    throw new SegGradCamError(`${name} has no negative map; methods with one: ${some.join(', ')}`, 'usage');
  }
  return entry.make(options);
}
