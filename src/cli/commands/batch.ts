import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { explainDataset, type BatchProgress, type BatchSummary, type DatasetOptions } from '../../batch/run.js';
import { REGION_RULES, type BatchPlan } from '../../batch/plan.js';
import { connectionOf, DEFAULT_QUEUE_NAME } from '../../batch/redis-url.js';
import { COLORMAPS } from '../../render/index.js';
import { DEFAULT_MODEL, inPackage } from '../defaults.js';
import { oneOf, parseInteger, parseList, parseNumberIn, parseRange } from '../parse.js';
import { BACKENDS, LIMIT_INPUT_PIXELS, type ModelOptions } from '../session.js';
import { addModelOptions, run } from '../common-options.js';

interface BatchFlags extends ModelOptions {
  outDir: string;
  classes: string;
  ignoreClasses?: string;
  region: string;
  layers: string;
  methods: string;
  score: string;
  workers: string;
  inFlight?: string;
  retryFailed?: boolean;
  iouThreshold: string;
  colormap: string;
  opacity: string;
  limitInputPixels: string;
  progress: boolean;
  queue?: string;
  queueName?: string;
}

/** Exit code of a run in which some items failed (the others are written). */
export const EXIT_ITEMS_FAILED = 3;

export function batchCommand(): Command {
  return addModelOptions(
    new Command('batch')
      .description('explain every image of a folder or manifest (resumable: run the same command again after a crash)')
      .argument('<input>', 'a folder of PNG/JPEG images, or a manifest (.csv or .jsonl: image, mask, region, class)')
      .addHelpText(
        'after',
        `
Requests per image: every class (--classes) × the region rule × every layer × every method.
Region rules: class-region (pixels predicted as the class), each-object (each connected object of
the class in the prediction), gt-object (each object of the class in the ground-truth mask),
whole (the whole image).

Output folder: items/<image>-<hash>/<class>_<region>_<layer>_<method>.png (overlay) and .npy
(raw CAM, float32), results.jsonl, errors.jsonl, summary.json, and with ground-truth masks
class-stats.csv and class-stats.md. Exit code 3 when some items failed (see errors.jsonl). With --queue, start
\`seg-grad-cam worker --queue …\` on any machine that sees the same paths.
See docs/batch.md.`,
      ),
  )
    .requiredOption('-o, --out-dir <dir>', 'output folder (also the ledger of finished items)')
    .option('--classes <list>', "class indices or names, or 'present' (every class predicted in the image)", 'present')
    .option('--ignore-classes <list>', "classes left out of 'present' (e.g. 0 for the background)")
    .option('--region <rule>', `region rule: ${REGION_RULES.join(', ')}`, 'class-region')
    .option('--layers <list>', "layers to explain ('bottleneck' = the model's bottleneck)", 'bottleneck')
    .option('--methods <list>', 'CAM methods', 'seg-grad-cam')
    .option('--score <kind>', 'logits or probability', 'logits')
    .option('--workers <n>', 'worker threads, one model each (0 = this thread)', '0')
    .option('--in-flight <n>', 'items being processed at once, at most (default 2 per worker)')
    .option('--retry-failed', 'run again the items that failed in an earlier run')
    .option('--iou-threshold <t>', 'heatmap threshold for the IoU with the ground-truth object', '0.5')
    .option('--colormap <name>', `overlay colours: ${COLORMAPS.join(', ')}`, 'turbo')
    .option('--opacity <a>', 'heatmap opacity over the image, 0..1', '0.5')
    .option(...LIMIT_INPUT_PIXELS)
    .option('--no-progress', 'no progress bar')
    .option(
      '--queue <redis-url>',
      'enqueue the items on BullMQ (redis://HOST:PORT) for `seg-grad-cam worker` processes; follow their progress',
    )
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .action((input: string, flags: BatchFlags) =>
      run(async () => {
        const plan: BatchPlan = {
          classes: flags.classes === 'present' ? 'present' : (parseList(flags.classes, '--classes') ?? []),
          ignoreClasses: parseList(flags.ignoreClasses, '--ignore-classes'),
          region: oneOf(flags.region, '--region', REGION_RULES),
          layers: parseList(flags.layers, '--layers'),
          methods: parseList(flags.methods, '--methods'),
          score: oneOf(flags.score, '--score', ['logits', 'probability'] as const),
          iouThreshold: parseNumberIn(flags.iouThreshold, '--iou-threshold', 0, 1),
          colormap: oneOf(flags.colormap, '--colormap', COLORMAPS),
          opacity: parseNumberIn(flags.opacity, '--opacity', 0, 1),
        };
        const options: DatasetOptions = {
          input,
          outDir: flags.outDir,
          plan,
          model: flags.model ?? inPackage(DEFAULT_MODEL),
          labels: flags.labels,
          output: flags.output,
          inputRange: flags.inputRange ? parseRange(flags.inputRange) : undefined,
          backend: oneOf(flags.backend ?? 'wasm', '--backend', BACKENDS),
          workers: parseInteger(flags.workers, '--workers', 0),
          inFlight: flags.inFlight === undefined ? undefined : parseInteger(flags.inFlight, '--in-flight', 1),
          limitInputPixels: parseInteger(flags.limitInputPixels, '--limit-input-pixels', 0),
          retryFailed: flags.retryFailed,
          queue: flags.queue,
          queueName: flags.queueName,
        };
        if (flags.queue) connectionOf(flags.queue);
        const summary = await runWithProgress(options, flags.progress);
        reportSummary(summary, flags.outDir);
      }),
    );
}

/** Runs the dataset with a progress bar on stderr (count, rate, ETA; resumed items count as done). SIGINT stops after the items in flight. */
export async function runWithProgress(options: DatasetOptions, progress: boolean): Promise<BatchSummary> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  const bar =
    progress && process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          {
            format: 'batch [{bar}] {value}/{total} items | {failed} failed | {rate} items/s | ETA {eta_formatted}',
            hideCursor: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let started = 0;
  let t0 = 0;
  const onProgress = (p: BatchProgress) => {
    if (!bar) return;
    if (!t0) {
      t0 = performance.now();
      started = p.done;
      bar.start(p.total, p.done, { failed: p.failed, rate: '–' });
      return;
    }
    const rate = (p.done - started) / ((performance.now() - t0) / 1000);
    bar.update(p.done, { failed: p.failed, rate: rate.toFixed(2) });
  };
  try {
    const it = explainDataset({ ...options, onProgress, signal: abort.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
}

/** The one-line summary; exit code 3 with "N of M items failed" when any failed. */
export function reportSummary(summary: BatchSummary, outDir: string): void {
  process.stdout.write(
    `${summary.done} of ${summary.items} items done, ${summary.requests - summary.failedRequests} requests explained → ${outDir}\n`,
  );
  if (summary.remaining > 0)
    process.stderr.write(`seg-grad-cam: stopped with ${summary.remaining} items left; run the same command again to resume\n`);
  if (summary.failedItems > 0) {
    process.stderr.write(`seg-grad-cam: ${summary.failedItems} of ${summary.items} items failed (see ${outDir}/errors.jsonl)\n`);
    process.exitCode = EXIT_ITEMS_FAILED;
  } else if (summary.remaining > 0) process.exitCode = 130;
}
