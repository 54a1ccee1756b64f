/**
 * Training checkpoints, swapped so that one complete checkpoint exists at every instant.
 *
 * A checkpoint folder (`OUT/checkpoint/`) holds one or two generations `ckpt-<seq>/` (seq: an
 * increasing counter, 6 digits), each complete: model.json + weights.bin, the Adam state
 * (optimizer.json + optimizer.bin: iteration count, first and second moments) and state.json
 * (step, options, class weights, history). A save
 *   1. writes the new generation into `ckpt-<seq>.partial/` (seq = newest + 1);
 *   2. renames it to `ckpt-<seq>/` (one atomic rename: a generation appears complete or not at all);
 *   3. renames each older generation to `ckpt-<n>.stale/` (atomic), then removes it.
 * A kill at any point leaves the previous generation, the new one, or both, and findCheckpoint
 * takes the newest complete one. The next save removes leftover `.partial` and `.stale` folders.
 *
 * Older layouts are read too: the files directly in the folder (before generations), and the
 * `checkpoint.tmp/` that the old remove-then-rename swap left when killed between its two steps.
 * `--resume` also accepts the training output folder (it then looks in its `checkpoint/`).
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import { loadModelDir, modelMetadata, saveModelDir } from './model-files.js';
import type { TrainOptions, TrainResult } from './options.js';

export interface CheckpointState {
  step: number;
  options: TrainOptions;
  classWeights: number[];
  history: TrainResult['history'];
  trainSeconds: number;
}

/** The files of a complete checkpoint (state.json is checked for content too). */
const CHECKPOINT_FILES = ['model.json', 'weights.bin', 'optimizer.json', 'optimizer.bin', 'state.json'] as const;

const GENERATION = /^ckpt-(\d+)$/;
const LEFTOVER = /^ckpt-(\d+)\.(partial|stale)$/;

/** Stages of a save, reported to `onStage` (tests stop a save there to check every intermediate state). */
export type SaveStage = 'model-written' | 'optimizer-written' | 'state-written' | 'renamed' | 'old-marked-stale' | 'old-removed';

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** The generation numbers in `dir`, newest first. */
async function generations(dir: string): Promise<number[]> {
  const seqs: number[] = [];
  for (const name of await entries(dir)) {
    const m = GENERATION.exec(name);
    if (m) seqs.push(Number(m[1]));
  }
  return seqs.sort((a, b) => b - a);
}

const generationName = (seq: number): string => `ckpt-${String(seq).padStart(6, '0')}`;

/**
 * Writes a checkpoint of `model`, `optimizer` and `state` into the checkpoint folder `dir` as a new
 * generation, then removes the older ones (see the file comment for the order).
 */
export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  state: CheckpointState,
  onStage?: (stage: SaveStage) => void,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  let newest = -1;
  for (const name of await entries(dir)) {
    const m = GENERATION.exec(name) ?? LEFTOVER.exec(name);
    if (!m) continue;
    newest = Math.max(newest, Number(m[1]));
    if (LEFTOVER.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
  const older = await generations(dir);
  const name = generationName(newest + 1);
  const partial = join(dir, `${name}.partial`);
  await saveModelDir(model, partial, modelMetadata(state.options));
  onStage?.('model-written');
  const { data, specs } = await tf.io.encodeWeights(await optimizer.getWeights());
  await writeFile(join(partial, 'optimizer.bin'), new Uint8Array(data));
  await writeFile(join(partial, 'optimizer.json'), JSON.stringify(specs));
  onStage?.('optimizer-written');
  await writeFile(join(partial, 'state.json'), JSON.stringify(state, null, 1));
  onStage?.('state-written');
  await rename(partial, join(dir, name));
  onStage?.('renamed');
  const stale = older.map((seq) => join(dir, `${generationName(seq)}.stale`));
  for (let i = 0; i < older.length; i++) await rename(join(dir, generationName(older[i])), stale[i]);
  onStage?.('old-marked-stale');
  for (const s of stale) await rm(s, { recursive: true, force: true });
  onStage?.('old-removed');
}

/** The state of the checkpoint in `dir` if every file of one is there and state.json parses; else undefined. */
async function completeState(dir: string): Promise<CheckpointState | undefined> {
  try {
    for (const f of CHECKPOINT_FILES) if (!(await stat(join(dir, f))).isFile()) return undefined;
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as CheckpointState;
    return Number.isInteger(state.step) && typeof state.options === 'object' ? state : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The folder of the complete checkpoint that `path` designates, with its state: the newest
 * complete generation in `path`; else `path` itself (the layout before generations); else
 * `path.tmp` (left by the old swap); else the same search in `path/checkpoint` (an output folder).
 * None: a 'file' error naming the path.
 */
export async function findCheckpoint(path: string): Promise<{ dir: string; state: CheckpointState }> {
  const search = async (p: string): Promise<{ dir: string; state: CheckpointState } | undefined> => {
    const candidates = [...(await generations(p)).map((seq) => join(p, generationName(seq))), p, `${p}.tmp`];
    for (const dir of candidates) {
      const state = await completeState(dir);
      if (state) return { dir: resolve(dir), state };
    }
    return undefined;
  };
  const found = (await search(path)) ?? (await search(join(path, 'checkpoint')));
  if (!found) throw new SegGradCamError(`not a training checkpoint (no complete checkpoint in it): ${path}`, 'file');
  return found;
}

/** Loads the checkpoint that `path` designates (findCheckpoint): model, Adam state and training state. */
export async function loadCheckpoint(path: string): Promise<{
  dir: string;
  model: tf.LayersModel;
  optimizerWeights: { name: string; tensor: tf.Tensor }[];
  state: CheckpointState;
}> {
  const { dir, state } = await findCheckpoint(path);
  const model = await loadModelDir(dir);
  const specs = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = await readFile(join(dir, 'optimizer.bin'));
  const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  return { dir, model, optimizerWeights: specs.map((s) => ({ name: s.name, tensor: map[s.name] })), state };
}

/** Reads the options stored in the checkpoint that `path` designates (for a CLI to merge with explicit flags). */
export async function checkpointOptions(path: string): Promise<TrainOptions> {
  return (await findCheckpoint(path)).state.options;
}
