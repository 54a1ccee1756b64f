import { SegGradCamError } from '../errors.js';
import type { CamMethod } from './method.js';
import { SegGradCam } from './seg-grad-cam.js';

export type { CamMethod } from './method.js';
export { ChannelWeightedCam } from './method.js';
export { SegGradCam } from './seg-grad-cam.js';

const registry: Record<string, () => CamMethod> = {
  'seg-grad-cam': () => new SegGradCam(),
};

export const methodNames = (): string[] => Object.keys(registry);

export function createMethod(name: string): CamMethod {
  const make = registry[name];
  if (!make) throw new SegGradCamError(`unknown method '${name}'; valid methods: ${methodNames().join(', ')}`, 'usage');
  return make();
}
