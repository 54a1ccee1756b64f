import { SegGradCamError } from '../errors.js';
import type { RgbaImage } from '../image.js';
import { readMaskFile } from '../io/files.js';
import * as R from '../region/region.js';
import { parseBox, parsePoint, parsePoints } from './parse.js';

export interface RegionFlags {
  pixel?: string;
  pixels?: string;
  box?: string;
  mask?: string;
  classRegion?: boolean;
  object?: string;
  whole?: boolean;
}

export const REGION_FLAGS = '--pixel, --pixels, --box, --mask, --class-region, --object, --whole';

/** Exactly one region flag → a Region (coordinates in the original image's pixels). */
export async function regionFromFlags(flags: RegionFlags, image: RgbaImage): Promise<R.Region> {
  const given = (['pixel', 'pixels', 'box', 'mask', 'classRegion', 'object', 'whole'] as const).filter(
    (k) => flags[k] !== undefined && flags[k] !== false,
  );
  if (given.length === 0) throw new SegGradCamError(`choose a region M with one of ${REGION_FLAGS}`, 'usage');
  if (given.length > 1) throw new SegGradCamError(`choose one region, not ${given.length}: ${given.map(flagName).join(' and ')}`, 'usage');
  switch (given[0]) {
    case 'pixel':
      return R.pixel(...parsePoint(flags.pixel as string));
    case 'pixels':
      return R.pixels(parsePoints(flags.pixels as string));
    case 'box':
      return R.box(...parseBox(flags.box as string));
    case 'mask': {
      const m = await readMaskFile(flags.mask as string, image.width, image.height);
      return R.mask(m.width, m.height, m.mask);
    }
    case 'classRegion':
      return R.classRegion();
    case 'object':
      return R.object(...parsePoint(flags.object as string, '--object'));
    case 'whole':
      return R.whole();
  }
}

const flagName = (k: string): string => (k === 'classRegion' ? '--class-region' : `--${k}`);
