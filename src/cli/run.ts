import { main } from './main.js';

// Entry point when running from source (`node --import tsx src/cli/run.ts …`).
await main(process.argv);
