/**
 * The committed models of the bias study (models/bias/<arm>-seed<k>/): found on disk, loaded as
 * Explainers with their training record, and used as segmenters (image → class per pixel).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isBiasArm, type BiasArm } from '../data/bias-tiles.js';
import { SegGradCamError } from '../errors.js';
import { Explainer } from '../explain.js';
import { classNamesFromMetadata } from '../io/labels.js';
import { readModelArtifacts } from '../engine/tfjs/load-node.js';
import { adapterFromArtifacts } from '../engine/tfjs/load.js';
import type { Segmenter } from './swap.js';

export interface StudyModel {
  arm: BiasArm;
  seed: number;
  dir: string;
  explainer: Explainer;
  /** From training.json: the exact command, steps, held-out mean IoU and per-class IoU, wall seconds. */
  training: {
    command?: string;
    steps?: number;
    meanIou?: number;
    biasIou?: number;
    wallSeconds?: number;
    trainSeconds?: number;
    stepsPerSecond?: number;
    params?: number;
  };
}

/** The model folders under `root` named <arm>-seed<k>, sorted by arm then seed. */
export async function findStudyModels(root: string): Promise<Array<{ arm: BiasArm; seed: number; dir: string }>> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    throw new SegGradCamError(`no model folder at ${root}`, 'file');
  }
  const found: Array<{ arm: BiasArm; seed: number; dir: string }> = [];
  for (const name of names) {
    const m = /^([a-z]+)-seed(\d+)$/.exec(name);
    if (!m || !isBiasArm(m[1])) continue;
    found.push({ arm: m[1], seed: Number(m[2]), dir: join(root, name) });
  }
  const order = ['strong', 'weak', 'none', 'control'];
  return found.sort((a, b) => order.indexOf(a.arm) - order.indexOf(b.arm) || a.seed - b.seed);
}

export async function loadStudyModel(entry: { arm: BiasArm; seed: number; dir: string }, biasClass: number): Promise<StudyModel> {
  const artifacts = await readModelArtifacts(join(entry.dir, 'model.json'));
  const explainer = new Explainer(await adapterFromArtifacts(artifacts), {
    classNames: classNamesFromMetadata(artifacts.userDefinedMetadata),
  });
  let training: StudyModel['training'] = {};
  try {
    const t = JSON.parse(await readFile(join(entry.dir, 'training.json'), 'utf8')) as {
      command?: string;
      steps?: number;
      finalMetrics?: { meanIou?: number; perClassIou?: Record<string, number> };
      wallSeconds?: number;
      trainSeconds?: number;
      stepsPerSecond?: number;
      params?: number;
    };
    const perClass = t.finalMetrics?.perClassIou ?? {};
    training = {
      command: t.command,
      steps: t.steps,
      meanIou: t.finalMetrics?.meanIou,
      biasIou: Object.values(perClass)[biasClass],
      wallSeconds: t.wallSeconds,
      trainSeconds: t.trainSeconds,
      stepsPerSecond: t.stepsPerSecond,
      params: t.params,
    };
  } catch {
    // no training record: reported as missing
  }
  return { ...entry, explainer, training };
}

/** The model as a segmenter: the predicted class per pixel. */
export function segmenterOf(model: StudyModel): Segmenter {
  return async (image) => {
    const p = await model.explainer.predict(image);
    model.explainer.release();
    return p.labels;
  };
}
