// Runs `seg-grad-cam evaluate …` from source (tsx), without building:
//   node --import tsx scripts/evaluate-cli.ts [--tiles N …]
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { evaluateCommand } from '../src/cli/commands/evaluate.js';
tf.enableProdMode();
const program = new Command('seg-grad-cam').addCommand(evaluateCommand());
await program.parseAsync(['node', 'seg-grad-cam', 'evaluate', ...process.argv.slice(2)]);
