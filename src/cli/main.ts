import * as tf from '@tensorflow/tfjs';
import { Command, CommanderError } from 'commander';
import { batchCommand } from './commands/batch.js';
import { evaluateCommand } from './commands/evaluate.js';
import { explainCommand } from './commands/explain.js';
import { explainVolumeCommand } from './commands/explain-volume.js';
import { layersCommand } from './commands/layers.js';
import { predictCommand } from './commands/predict.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';

/** Commander's own usage errors, as one line in our format. */
const oneLineErrors = {
  outputError: (text: string, write: (s: string) => void) => write(`seg-grad-cam: ${text.replace(/^error: /, '').trim()}\n`),
};

export function buildProgram(): Command {
  const program = new Command('seg-grad-cam')
    .description('Explain what a semantic-segmentation network looks at (Seg-Grad-CAM, Vinogradova et al. 2020)')
    .version('0.1.0')
    .exitOverride()
    .configureOutput(oneLineErrors);
  for (const cmd of [
    explainCommand(),
    layersCommand(),
    predictCommand(),
    trainCommand(),
    evaluateCommand(),
    batchCommand(),
    workerCommand(),
    explainVolumeCommand(),
  ]) {
    program.addCommand(cmd.exitOverride().configureOutput(oneLineErrors));
  }
  return program;
}

/** CLI entry: usage errors exit with code 2 and one line, never a stack trace. */
export async function main(argv: string[]): Promise<void> {
  // Production mode: no debug checks, and no "install tfjs-node" banner in our output.
  tf.enableProdMode();
  // `seg-grad-cam layers | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    throw err;
  }
}
