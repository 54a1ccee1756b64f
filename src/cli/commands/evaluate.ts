/**
 * `seg-grad-cam evaluate`: the quantitative evaluation of docs/evaluation/protocol.md on the
 * two bundled U-Nets (trained with and without the planted bias): bias detection, deletion and
 * insertion, cascading-randomisation sanity checks, the layer sweep, α across locations and the
 * cost per method. Writes report.md, PNG plots and results.json into --out.
 */
import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { setupBackend } from '../../backend/index.js';
import { SegGradCamError } from '../../errors.js';
import { buildReport } from '../../eval/report.js';
import type { EvaluationOptions, ProgressEvent } from '../../eval/results.js';
import { runEvaluation } from '../../eval/run.js';
import { DEFAULT_METHOD_OPTIONS, DEFAULT_METHODS } from '../../eval/setup.js';
import { writeFileAtomic } from '../../io/files.js';
import { parseBaseline } from '../../methods/baseline.js';
import { methodNames, type MethodOptions } from '../../methods/index.js';
import { inPackage } from '../defaults.js';
import { formatDuration, oneOf, parseInteger, parseList } from '../parse.js';
import { run } from '../common-options.js';

export const DEFAULT_EVAL_MODELS = ['models/unet-texture-mnist-biased-base8/model.json', 'models/unet-texture-mnist-unbiased/model.json'];

/** The defaults of the committed report (about 10–15 minutes on one core of the 2-core reference machine). */
export const EVAL_DEFAULTS = {
  tiles: 50,
  curveTiles: 20,
  sanityTiles: 4,
  alphaTiles: 3,
  alphaPixels: 24,
  checkTiles: 2000,
  steps: 12,
  randomOrders: 2,
  seed: 0,
  scoreCamChannels: DEFAULT_METHOD_OPTIONS['score-cam'].maxChannels as number,
  igSteps: DEFAULT_METHOD_OPTIONS['integrated-gradients'].steps as number,
  gridIterations: DEFAULT_METHOD_OPTIONS['grid-saliency'].iterations as number,
  gridSize: DEFAULT_METHOD_OPTIONS['grid-saliency'].maskResolution as number,
};

interface EvaluateFlags {
  models?: string;
  labels?: string;
  tiles: string;
  curveTiles: string;
  sanityTiles: string;
  alphaTiles: string;
  alphaPixels: string;
  checkTiles: string;
  methods?: string;
  layers?: string;
  steps: string;
  randomOrders: string;
  seed: string;
  scoreCamChannels: string;
  igSteps: string;
  gridIterations: string;
  gridSize: string;
  deletionBaseline: string;
  insertionBaseline: string;
  out: string;
  backend: string;
  progress: boolean;
}

/** The command line that reproduces a run (every option spelled out, paths as given). */
export function canonicalCommand(o: EvaluationOptions, out: string, methodOptions: Record<string, MethodOptions>): string {
  const q = (s: string) => (/^[\w./@:+,-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  const parts = [
    'seg-grad-cam evaluate',
    `--models ${q(o.models.join(','))}`,
    ...(o.labels ? [`--labels ${q(o.labels.join(','))}`] : []),
    `--tiles ${o.tiles} --curve-tiles ${o.curveTiles} --sanity-tiles ${o.sanityTiles}`,
    `--alpha-tiles ${o.alphaTiles} --alpha-pixels ${o.alphaPixels} --check-tiles ${o.checkTiles ?? 0}`,
    `--methods ${q(o.methods.join(','))}`,
    ...(o.layers ? [`--layers ${q(o.layers.join(','))}`] : []),
    `--steps ${o.steps} --random-orders ${o.randomOrders} --seed ${o.seed}`,
    `--score-cam-channels ${methodOptions['score-cam'].maxChannels} --ig-steps ${methodOptions['integrated-gradients'].steps}`,
    `--grid-iterations ${methodOptions['grid-saliency'].iterations} --grid-size ${methodOptions['grid-saliency'].maskResolution}`,
    `--deletion-baseline ${String(o.deletionBaseline ?? 'black')} --insertion-baseline ${String(o.insertionBaseline ?? 'blurred')}`,
    `--out ${q(out)}`,
  ];
  return parts.join(' \\\n  ');
}

export function evaluateCommand(): Command {
  const d = EVAL_DEFAULTS;
  return new Command('evaluate')
    .description(
      'quantitative evaluation (bias detection, deletion/insertion, sanity checks, layer sweep, α across locations, cost): writes a Markdown report with PNG plots',
    )
    .addHelpText(
      'after',
      `
The first model should be the one trained with the planted bias, the second the unbiased control
(same recipe); the tiles are held-out TextureMNIST tiles that contain the bias digit on the bias
texture, generated identically for both. Every number but the timings is reproducible from the flags.

Examples:
  seg-grad-cam evaluate                                  # the bundled models → docs/evaluation/
  seg-grad-cam evaluate --tiles 8 --curve-tiles 4 --sanity-tiles 1 --out /tmp/eval`,
    )
    .option('--models <a,b>', 'biased model.json, then the unbiased control (default: the two bundled U-Nets)')
    .option('--labels <a,b>', 'names of the models in the report (default: biased,unbiased)')
    .option('--tiles <n>', 'held-out tiles with the bias digit, per model', String(d.tiles))
    .option('--curve-tiles <n>', 'of those, tiles that also get deletion/insertion curves', String(d.curveTiles))
    .option('--sanity-tiles <n>', 'of those, tiles explained at every step of the cascading randomisation', String(d.sanityTiles))
    .option('--alpha-tiles <n>', 'α across locations: tiles', String(d.alphaTiles))
    .option('--alpha-pixels <n>', 'α across locations: pixels per tile', String(d.alphaPixels))
    .option('--check-tiles <n>', 'behavioural check of the shortcut: held-out tiles scanned (0 = skip)', String(d.checkTiles))
    .option('--methods <list>', `methods (default: ${DEFAULT_METHODS.join(',')})`)
    .option('--layers <list>', "layers for the CAM methods (default: an early encoder layer, 'bottleneck', a decoder layer)")
    .option('--steps <n>', 'deletion/insertion steps', String(d.steps))
    .option('--random-orders <n>', 'random orders per tile (the reference curve)', String(d.randomOrders))
    .option('--seed <n>', 'seed of tiles, tie-breaking, random orders and weight randomisation', String(d.seed))
    .option('--score-cam-channels <n>', 'score-cam: channels scored', String(d.scoreCamChannels))
    .option('--ig-steps <n>', 'integrated-gradients: steps', String(d.igSteps))
    .option('--grid-iterations <n>', 'grid-saliency: optimisation steps', String(d.gridIterations))
    .option('--grid-size <n>', 'grid-saliency: mask grid n×n', String(d.gridSize))
    .option('--deletion-baseline <b>', 'what deleted pixels become: black, blurred or a number', 'black')
    .option('--insertion-baseline <b>', 'what insertion starts from: black, blurred or a number', 'blurred')
    .option('-o, --out <dir>', 'output folder (report.md, *.png, results.json)', 'docs/evaluation')
    .option('--backend <name>', 'TensorFlow.js backend: wasm or cpu', 'wasm')
    .option('--no-progress', 'no progress bar (log lines instead)')
    .action((flags: EvaluateFlags) =>
      run(async () => {
        const methods = parseList(flags.methods, '--methods') ?? DEFAULT_METHODS;
        for (const m of methods) oneOf(m, '--methods', methodNames());
        const modelsGiven = parseList(flags.models, '--models');
        const models = modelsGiven ?? DEFAULT_EVAL_MODELS.map((m) => inPackage(m));
        const labels = parseList(flags.labels, '--labels');
        if (models.length > 2)
          throw new SegGradCamError(`--models expects one or two models (biased, then unbiased), got ${models.length}`, 'usage');
        if (labels && labels.length !== models.length)
          throw new SegGradCamError(`--labels names ${labels.length} models but --models gives ${models.length}`, 'usage');
        const methodOptions: Record<string, MethodOptions> = {
          ...DEFAULT_METHOD_OPTIONS,
          'score-cam': {
            ...DEFAULT_METHOD_OPTIONS['score-cam'],
            maxChannels: parseInteger(flags.scoreCamChannels, '--score-cam-channels', 1),
          },
          'integrated-gradients': {
            ...DEFAULT_METHOD_OPTIONS['integrated-gradients'],
            steps: parseInteger(flags.igSteps, '--ig-steps', 1),
          },
          'grid-saliency': {
            ...DEFAULT_METHOD_OPTIONS['grid-saliency'],
            iterations: parseInteger(flags.gridIterations, '--grid-iterations', 1),
            maskResolution: parseInteger(flags.gridSize, '--grid-size', 1),
          },
        };
        const ig = methodOptions['integrated-gradients'];
        ig.batchSize = Math.min(32, (ig.steps as number) + 1);
        const options: EvaluationOptions = {
          models,
          labels,
          tiles: parseInteger(flags.tiles, '--tiles', 1),
          curveTiles: parseInteger(flags.curveTiles, '--curve-tiles', 0),
          sanityTiles: parseInteger(flags.sanityTiles, '--sanity-tiles', 0),
          alphaTiles: parseInteger(flags.alphaTiles, '--alpha-tiles', 0),
          alphaPixels: parseInteger(flags.alphaPixels, '--alpha-pixels', 0),
          checkTiles: parseInteger(flags.checkTiles, '--check-tiles', 0),
          methods,
          layers: parseList(flags.layers, '--layers'),
          steps: parseInteger(flags.steps, '--steps', 1),
          randomOrders: parseInteger(flags.randomOrders, '--random-orders', 0),
          seed: parseInteger(flags.seed, '--seed', 0),
          methodOptions,
          deletionBaseline: parseBaseline(flags.deletionBaseline),
          insertionBaseline: parseBaseline(flags.insertionBaseline),
        };
        const backend = oneOf(flags.backend, '--backend', ['wasm', 'cpu'] as const);
        const outDir = flags.out;
        await mkdir(outDir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
          throw new SegGradCamError(`cannot create the output folder ${outDir}: ${err.code ?? err.message}`, 'file');
        });
        await setupBackend(backend);

        const useBar = flags.progress !== false && process.stderr.isTTY === true;
        const bar = useBar
          ? new cliProgress.SingleBar(
              {
                format: 'evaluate |{bar}| {value}/{total} | {phase} | {duration_formatted} elapsed | ETA {eta_formatted}',
                hideCursor: true,
                stream: process.stderr,
                etaBuffer: 200,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
        const started = performance.now();
        let lastLog = 0;
        let barStarted = false;
        const onProgress = (p: ProgressEvent): void => {
          if (bar) {
            if (!barStarted) bar.start(p.total, p.done, { phase: p.phase });
            else bar.update(p.done, { phase: p.phase });
            barStarted = true;
            return;
          }
          const now = performance.now();
          if (flags.progress !== false && (now - lastLog > 30_000 || p.done === p.total)) {
            lastLog = now;
            const elapsed = (now - started) / 1000;
            const eta = (elapsed / p.done) * (p.total - p.done);
            process.stderr.write(
              `evaluate ${p.done}/${p.total} (${p.phase}), ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(eta)}\n`,
            );
          }
        };
        let results;
        try {
          results = await runEvaluation(options, onProgress);
        } finally {
          bar?.stop();
        }
        const display = (p: string) => {
          const rel = relative(process.cwd(), p);
          return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
        };
        const shown = { ...options, models: models.map(display) };
        const report = buildReport(results, { command: canonicalCommand(shown, display(outDir), methodOptions), displayPath: display });
        // Plots and data first, the report last: a report never points at missing plots.
        for (const [name, bytes] of Object.entries(report.images)) await writeFileAtomic(join(outDir, name), bytes);
        await writeFileAtomic(join(outDir, 'results.json'), new TextEncoder().encode(report.json));
        await writeFileAtomic(join(outDir, 'report.md'), new TextEncoder().encode(report.markdown));
        process.stderr.write(
          `wrote ${join(outDir, 'report.md')} and ${Object.keys(report.images).length} plots in ${formatDuration(results.timing.wallSeconds)}\n`,
        );
      }),
    );
}
