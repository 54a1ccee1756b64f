/**
 * Runs the seg-grad-cam CLI from the TypeScript sources (no build step):
 * `node --import tsx scripts/bias/cli.ts train --dataset bias --arm strong …` is
 * `seg-grad-cam train --dataset bias --arm strong …`.
 */
import { main } from '../../src/cli/main.js';

await main(process.argv);
