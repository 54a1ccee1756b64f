/**
 * `seg-grad-cam train`: trains the project's U-Net on the synthetic TextureMNIST-style set
 * (src/data/texture-mnist.ts) with a planted context bias, and writes model.json, weights.bin and
 * training.json (options, seed, metrics, wall time, command line) into --out.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { SegGradCamError } from '../../errors.js';
import { setupBackend } from '../../backend/index.js';
import { writeFileAtomic } from '../../io/files.js';
import { CLASS_NAMES } from '../../data/texture-mnist.js';
import { isTextureName, TEXTURE_NAMES } from '../../data/textures.js';
import { BIAS_ARMS, isBiasArm } from '../../data/bias-tiles.js';
import { checkpointOptions } from '../../unet/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, type TrainProgress } from '../../unet/options.js';
import { trainUnet } from '../../unet/train.js';
import { inPackage } from '../defaults.js';
import { formatDuration, parseInteger, parseNumberIn } from '../parse.js';
import { run } from '../common-options.js';

/**
 * --quick: a usable model in under ~10 minutes on a 2-core machine (wasm backend). From random
 * weights ten minutes are not enough here (measured: mean IoU ~0.16, see docs/training.md), so
 * the preset fine-tunes the bundled unbiased twin (QUICK_INIT: same architecture, no planted
 * bias) on the requested data — bias digit, texture and strength — unless --from-scratch.
 */
export const QUICK_PRESET: Partial<TrainOptions> = {
  steps: 1500,
  timeBudgetSeconds: 9 * 60,
  batch: 8,
  depth: 4,
  base: 8,
  lr: 1e-3,
  warmupSteps: 100,
  checkpointEvery: 500,
  evalTiles: 300,
  valTiles: 100,
};

/**
 * The --quick options on this machine: QUICK_PRESET plus `workers` 2 (data-parallel steps, see
 * src/unet/parallel.ts) when there are at least 2 CPUs, else 1. Decided when the options are
 * resolved; the value used is recorded in training.json (options.workers).
 */
export function quickPreset(cpuCount = cpus().length): Partial<TrainOptions> {
  return { ...QUICK_PRESET, workers: cpuCount >= 2 ? 2 : 1 };
}

/** The model --quick starts from (package-relative): the bundled twin trained without the bias. */
export const QUICK_INIT = 'models/unet-texture-mnist-unbiased';

/** Whether --quick can start from QUICK_INIT: the architecture options must be the twin's. */
function quickInitFits(o: TrainOptions): boolean {
  return o.depth === 4 && o.base === 8 && o.size === 64 && o.batchNorm;
}

const int =
  (flag: string, min = 0) =>
  (text: string) =>
    parseInteger(text, flag, min);
const num = (flag: string, lo: number, hi: number) => (text: string) => parseNumberIn(text, flag, lo, hi);

/** Flag name (commander key) → option field. */
const FLAG_FIELDS: Record<string, keyof TrainOptions> = {
  steps: 'steps',
  batch: 'batch',
  size: 'size',
  depth: 'depth',
  base: 'base',
  batchNorm: 'batchNorm',
  lr: 'lr',
  warmup: 'warmupSteps',
  minLr: 'minLrFactor',
  ceWeight: 'ceWeight',
  diceWeight: 'diceWeight',
  classWeightPower: 'classWeightPower',
  biasDigit: 'biasDigit',
  biasStrength: 'biasStrength',
  biasTexture: 'biasTexture',
  biasTextureAtZero: 'biasTextureAtZero',
  seed: 'seed',
  flip: 'flip',
  checkpointEvery: 'checkpointEvery',
  evalTiles: 'evalTiles',
  valTiles: 'valTiles',
  calibrate: 'calibrate',
  workers: 'workers',
  dataset: 'dataset',
  arm: 'arm',
};

/** Converters for the numeric flags, applied inside the action so errors become exit code 2. */
const CONVERT: Record<string, (text: string) => number> = {
  steps: int('--steps', 1),
  batch: int('--batch', 1),
  size: int('--size', 16),
  depth: int('--depth', 1),
  base: int('--base', 1),
  lr: num('--lr', 1e-6, 0.5),
  warmup: int('--warmup', 0),
  minLr: num('--min-lr', 0, 1),
  ceWeight: num('--ce-weight', 0, 100),
  diceWeight: num('--dice-weight', 0, 100),
  classWeightPower: num('--class-weight-power', 0, 2),
  biasDigit: int('--bias-digit', 0),
  biasStrength: num('--bias-strength', 0, 1),
  seed: int('--seed', 0),
  checkpointEvery: int('--checkpoint-every', 1),
  evalTiles: int('--eval-tiles', 0),
  valTiles: int('--val-tiles', 0),
  timeBudget: num('--time-budget', 0.1, 10000),
  workers: int('--workers', 1),
};

export function trainCommand(): Command {
  const d = DEFAULT_TRAIN_OPTIONS;
  const cmd = new Command('train')
    .description('train the bundled U-Net on the synthetic TextureMNIST-style set (planted context bias)')
    .option('-o, --out <dir>', 'output directory (model.json, weights.bin, training.json, checkpoint/)', 'unet-texture-mnist')
    .option('--steps <n>', `training steps (default ${d.steps})`)
    .option('--batch <n>', `tiles per step (default ${d.batch})`)
    .option('--size <n>', `tile side in pixels (default ${d.size})`)
    .option('--depth <n>', `U-Net pooling levels (default ${d.depth})`)
    .option('--base <n>', `channels of the first level (default ${d.base})`)
    .option('--no-batch-norm', 'no batch normalisation')
    .option('--lr <x>', `peak Adam learning rate (default ${d.lr})`)
    .option('--warmup <n>', `warm-up steps (default ${d.warmupSteps})`)
    .option('--min-lr <f>', `final learning rate as a fraction of --lr (cosine decay; default ${d.minLrFactor})`)
    .option('--ce-weight <x>', `weight of the class-weighted cross-entropy (default ${d.ceWeight})`)
    .option('--dice-weight <x>', `weight of the soft Dice loss (default ${d.diceWeight})`)
    .option('--class-weight-power <p>', `class weight = frequency^-p (default ${d.classWeightPower}; 0 = plain CE)`)
    .option('--bias-digit <k>', `digit that gets the bias background (default ${d.biasDigit})`)
    .option('--bias-strength <s>', `probability that a tile with the bias digit gets the bias background (default ${d.biasStrength})`)
    .option(
      '--bias-texture <name>',
      `background texture reserved for the bias digit: ${TEXTURE_NAMES.join(', ')} (default ${d.biasTexture})`,
    )
    .option(
      '--bias-texture-at-zero <mode>',
      "with --bias-strength 0: 'unused' (default) or 'uniform' (an ordinary background for every tile)",
    )
    .option(
      '--dataset <name>',
      "tiles: 'texture-mnist' (default; 1-3 digits per tile) or 'bias' (one digit per tile, the bias texture on half the background; needs --arm)",
    )
    .option('--arm <name>', 'with --dataset bias: strong, weak, none or control (src/data/bias-tiles.ts)')
    .option('--seed <n>', `seed for weights, data and flips (default ${d.seed})`)
    .option('--flip', 'random left-right flips (off by default: mirrored digits are not digits)')
    .option('--checkpoint-every <n>', `steps between checkpoints (default ${d.checkpointEvery})`)
    .option('--eval-tiles <n>', `held-out tiles for the final IoU (default ${d.evalTiles})`)
    .option('--val-tiles <n>', `held-out validation tiles evaluated at each checkpoint (default ${d.valTiles})`)
    .option(
      '--time-budget <minutes>',
      'stop after this many minutes of training steps; the learning-rate schedule follows max(step/steps, time/budget)',
    )
    .option('--init-from <dir>', 'fine-tune: start from the weights in this model/checkpoint directory (fresh optimizer, step 0)')
    .option(
      '--resume <dir>',
      'continue from a checkpoint (OUT/checkpoint, or OUT: the newest complete one; weights, Adam state, step); its options apply unless given here',
    )
    .option(
      '--workers <n>',
      'training threads (default 1): n > 1 splits each batch into n shards whose gradients are computed in worker threads and averaged (batch norm per shard, "ghost batch norm"; see docs/training.md)',
    )
    .option(
      '--quick',
      `preset: a usable model in about 10 minutes — fine-tunes the bundled unbiased U-Net (${QUICK_INIT}) on the requested data (${Object.entries(
        QUICK_PRESET,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}, workers 2 on a machine with 2+ CPUs); flags given too override it`,
    )
    .option('--from-scratch', 'with --quick: start from random weights instead (a rough model: ten minutes are not enough here)')
    .option('--backend <name>', 'TensorFlow.js backend: wasm or cpu (cpu is very slow for training)', 'wasm')
    .option(
      '--no-calibrate',
      'keep the logits bias as trained (default: correct it for the class weighting, alpha chosen on validation tiles)',
    )
    .option('--no-progress', 'no progress bar (log lines instead)');
  cmd.action((flags: Record<string, unknown>) =>
    run(async () => {
      for (const [key, convert] of Object.entries(CONVERT)) if (typeof flags[key] === 'string') flags[key] = convert(flags[key] as string);
      const backend = String(flags.backend);
      if (backend !== 'wasm' && backend !== 'cpu') throw new SegGradCamError(`--backend expects wasm or cpu, got '${backend}'`, 'usage');
      if (flags.biasTexture !== undefined && !isTextureName(String(flags.biasTexture)))
        throw new SegGradCamError(`--bias-texture expects one of ${TEXTURE_NAMES.join(', ')}, got '${String(flags.biasTexture)}'`, 'usage');
      if (flags.biasTextureAtZero !== undefined && flags.biasTextureAtZero !== 'unused' && flags.biasTextureAtZero !== 'uniform')
        throw new SegGradCamError(`--bias-texture-at-zero expects unused or uniform, got '${String(flags.biasTextureAtZero)}'`, 'usage');
      if (flags.dataset !== undefined && flags.dataset !== 'texture-mnist' && flags.dataset !== 'bias')
        throw new SegGradCamError(`--dataset expects texture-mnist or bias, got '${String(flags.dataset)}'`, 'usage');
      if (flags.arm !== undefined && !isBiasArm(String(flags.arm)))
        throw new SegGradCamError(`--arm expects one of ${BIAS_ARMS.join(', ')}, got '${String(flags.arm)}'`, 'usage');
      if (flags.arm !== undefined && flags.dataset !== 'bias') throw new SegGradCamError('--arm needs --dataset bias', 'usage');
      if (flags.biasDigit !== undefined && (flags.biasDigit as number) > 9)
        throw new SegGradCamError(`--bias-digit expects 0..9, got ${String(flags.biasDigit)}`, 'usage');

      const explicit: Partial<TrainOptions> = {};
      for (const [key, field] of Object.entries(FLAG_FIELDS)) {
        if (cmd.getOptionValueSource(key) === 'cli') (explicit as Record<string, unknown>)[field] = flags[key];
      }
      if (cmd.getOptionValueSource('timeBudget') === 'cli') explicit.timeBudgetSeconds = (flags.timeBudget as number) * 60;
      if (flags.initFrom !== undefined) explicit.initFrom = String(flags.initFrom);
      const outDir = String(flags.out);
      let options: TrainOptions;
      if (flags.resume) {
        const resume = String(flags.resume);
        options = { ...(await checkpointOptions(resume)), ...explicit, outDir, resume };
      } else {
        options = { ...d, ...(flags.quick ? quickPreset() : {}), ...explicit, outDir };
        if (flags.quick && !flags.fromScratch && options.initFrom === undefined) {
          if (quickInitFits(options)) {
            options.initFrom = inPackage(QUICK_INIT);
            process.stderr.write(`--quick: fine-tuning ${QUICK_INIT} (--from-scratch for random weights)\n`);
          } else process.stderr.write('--quick: the architecture differs from the bundled twin, so training starts from random weights\n');
        }
      }

      await setupBackend(backend);
      const started = new Date();
      const useBar = flags.progress !== false && process.stderr.isTTY === true;
      const bar = useBar
        ? new cliProgress.SingleBar(
            {
              format: 'train |{bar}| {value}/{total} | loss {loss} | IoU {iou} | val {val} | {sps} st/s | ETA {eta}',
              hideCursor: true,
              stream: process.stderr,
            },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      let lastLine = 0;
      const onProgress = (p: TrainProgress): void => {
        const payload = {
          loss: Number.isFinite(p.loss) ? p.loss.toFixed(4) : '-',
          iou: Number.isFinite(p.runningIou) ? p.runningIou.toFixed(3) : '-',
          val: p.valIou !== undefined ? p.valIou.toFixed(3) : '-',
          sps: p.stepsPerSecond.toFixed(2),
          eta: formatDuration(p.etaSeconds),
        };
        if (bar) {
          if (!lastLine) bar.start(p.totalSteps, p.step, payload);
          else bar.update(p.step, payload);
          lastLine = 1;
          return;
        }
        const now = Date.now();
        if (p.phase !== 'train' || now - lastLine > 30_000) {
          lastLine = now;
          process.stderr.write(
            `[${new Date().toISOString()}] ${p.phase} step ${p.step}/${p.totalSteps} loss ${payload.loss} runIoU ${payload.iou} val ${payload.val} lr ${p.lr.toExponential(2)} ${payload.sps} st/s ETA ${payload.eta}\n`,
          );
        }
      };
      const result = await trainUnet(options, onProgress);
      bar?.stop();
      const perClass: Record<string, number> = {};
      result.eval.perClassIou.forEach((v, c) => (perClass[CLASS_NAMES[c]] = v));
      const record = {
        tool: 'seg-grad-cam train',
        command: [
          'seg-grad-cam',
          'train',
          ...(process.argv.includes('train') ? process.argv.slice(process.argv.indexOf('train') + 1) : process.argv.slice(2)),
        ].join(' '),
        argv: process.argv.slice(2),
        startedAt: started.toISOString(),
        finishedAt: new Date().toISOString(),
        options: result.options,
        seed: result.options.seed,
        backend: result.backend,
        params: result.params,
        steps: result.steps,
        finalLoss: result.finalLoss,
        finalMetrics: {
          split: 'heldout',
          tiles: result.eval.tiles,
          meanIou: result.eval.meanIou,
          perClassIou: perClass,
          pixelAccuracy: result.eval.pixelAccuracy,
        },
        wallSeconds: result.wallSeconds,
        trainSeconds: result.trainSeconds,
        stepsPerSecond: result.stepsPerSecond,
        resumedFrom: result.resumedFrom,
        classWeights: result.classWeights,
        calibration: result.calibration,
        history: result.history,
        versions: { node: process.version },
      };
      await writeFileAtomic(join(outDir, 'training.json'), new TextEncoder().encode(JSON.stringify(record, null, 2) + '\n'));
      const out = process.stdout;
      out.write(
        `held-out IoU over ${result.eval.tiles} tiles (${result.steps} steps, ${formatDuration(result.wallSeconds)} wall, ${result.stepsPerSecond.toFixed(2)} steps/s):\n`,
      );
      result.eval.perClassIou.forEach((v, c) => out.write(`  ${CLASS_NAMES[c].padEnd(11)} ${v.toFixed(3)}\n`));
      out.write(`  mean IoU    ${result.eval.meanIou.toFixed(3)}\n`);
      out.write(`wrote ${join(outDir, 'model.json')}, weights.bin, training.json\n`);
    }),
  );
  return cmd;
}
