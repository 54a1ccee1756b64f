// Runs `seg-grad-cam train …` from source (tsx), without the rest of the CLI:
//   node --import tsx scripts/train-cli.ts --out DIR --steps N …
import { Command } from 'commander';
import { trainCommand } from '../src/cli/commands/train.js';
const program = new Command('seg-grad-cam').addCommand(trainCommand());
await program.parseAsync(['node', 'seg-grad-cam', 'train', ...process.argv.slice(2)]);
