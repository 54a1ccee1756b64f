/**
 * The held-out tiles of the bias study (issue 15), identical for every model and arm: the same
 * tile index rendered with the bias texture forced on its second half (src/data/bias-tiles.ts
 * overrides), so each model sees the same inputs and arm differences are paired by tile.
 *
 * - bias tiles: the bias digit on the bias texture, with counterfactual renderings of the half in
 *   every other pool texture except the tile's own background and fill (means matched to the
 *   original over the half by swapBackground);
 * - other tiles: a digit other than the bias digit on the bias texture, and the same tile without it;
 * - test tiles per digit (for the CBD matrix): digit t on the bias texture.
 */
import type { BiasTile, BiasTiles } from '../data/bias-tiles.js';
import { swapBackground } from './swap.js';
import type { GateTiles } from './protocol/gate.js';
import type { RgbaImage } from '../image.js';

/** Held-out tile indices start here (the training runs evaluate on 0… and validate on 1 000 000…). */
export const STUDY_OFFSET = 3_000_000;

export interface StudyTile {
  index: number;
  tile: BiasTile;
  /** The tile with its bias half re-rendered in other textures (means matched). */
  swapped: RgbaImage[];
  /** Their textures. */
  swapTextures: string[];
}

/** `count` bias-digit tiles on the bias texture with their swapped renderings. */
export function biasStudyTiles(ds: BiasTiles, count: number, offset = STUDY_OFFSET): StudyTile[] {
  const out: StudyTile[] = [];
  const digit = ds.options.biasDigit;
  for (let k = 0; k < count; k++) {
    const index = offset + k;
    const tile = ds.sample('heldout', index, { biasPresent: true }, digit);
    const textures = ds.pool.filter((t) => t !== tile.backgroundTexture && t !== tile.fillTexture);
    const swapped = textures.map((t) => {
      const alt = ds.sample('heldout', index, { biasPresent: true, secondTexture: t }, digit);
      return swapBackground(tile.image, tile.biasMask, alt.image);
    });
    out.push({ index, tile, swapped, swapTextures: textures });
  }
  return out;
}

/** `count` tiles of other digits (the drawn digit if not the bias digit, else the next one), on and off the bias texture. */
export function otherDigitTiles(ds: BiasTiles, count: number, offset = STUDY_OFFSET + 500_000): { on: BiasTile[]; off: BiasTile[] } {
  const on: BiasTile[] = [];
  const off: BiasTile[] = [];
  const b = ds.options.biasDigit;
  for (let k = 0; k < count; k++) {
    const digit = (b + 1 + (k % 9)) % 10; // every other digit equally often
    on.push(ds.sample('heldout', offset + k, { biasPresent: true }, digit));
    off.push(ds.sample('heldout', offset + k, { biasPresent: false }, digit));
  }
  return { on, off };
}

/** The gate's tiles from the study tiles. */
export function gateTiles(study: StudyTile[], others: { on: BiasTile[]; off: BiasTile[] }): GateTiles {
  return {
    swap: study.map((s) => ({ image: s.tile.image, labels: s.tile.labels, swapped: s.swapped })),
    others: others.on.map((t) => ({ image: t.image, labels: t.labels })),
    othersPlain: others.off.map((t) => ({ image: t.image, labels: t.labels })),
  };
}

/** Test tiles of digit t on the bias texture (the CBD matrix's columns). */
export function testDigitTiles(ds: BiasTiles, digit: number, count: number, offset = STUDY_OFFSET + 800_000): BiasTile[] {
  return Array.from({ length: count }, (_, k) => ds.sample('heldout', offset + 1000 * digit + k, { biasPresent: true }, digit));
}
