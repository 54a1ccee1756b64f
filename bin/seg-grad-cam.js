#!/usr/bin/env node
// Entry point for the installed CLI: runs the compiled command-line module.
import('../dist/cli/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    console.error(`seg-grad-cam: ${err && err.message ? err.message : err}`);
    process.exit(1);
  });
