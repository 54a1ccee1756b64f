import { Command } from 'commander';
import { SegGradCamError } from '../errors.js';

/** --model/--labels/--output/--input-range/--backend, shared by every command that loads a model. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <model.json>', 'TF.js model (layers or graph format); default: the bundled U-Net')
    .option('--labels <file>', "class names: a JSON array or one name per line (default: the model's metadata)")
    .option('--output <node>', 'graph models: the node to explain (default: the model output; a final sigmoid/softmax is skipped)')
    .option('--input-range <lo,hi>', 'pixel values 0..255 are scaled to [lo, hi] (default 0,1)')
    .option('--backend <name>', 'TensorFlow.js backend: wasm or cpu', 'wasm');
}

/** Runs a command body; usage and input errors become one line on stderr and exit code 2. */
export async function run(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof SegGradCamError) {
      process.stderr.write(`seg-grad-cam: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`seg-grad-cam: internal error: ${(err as Error)?.message ?? err}\n`);
    if (process.env.SEG_GRAD_CAM_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    process.exitCode = 1;
  }
}
