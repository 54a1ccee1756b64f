import { Command } from 'commander';
import { addModelOptions, run } from '../common-options.js';
import { openExplainer, type ModelOptions } from '../session.js';

export function layersCommand(): Command {
  return addModelOptions(
    new Command('layers').description('list the layers that can be explained, with output shapes; the bottleneck is marked'),
  )
    .option('--json', 'print JSON instead of a table')
    .action((opts: ModelOptions & { json?: boolean }) =>
      run(async () => {
        const { explainer } = await openExplainer(opts);
        const layers = explainer.layers();
        if (opts.json) {
          process.stdout.write(
            JSON.stringify({ input: explainer.adapter.input, output: explainer.adapter.output, layers }, null, 2) + '\n',
          );
        } else {
          const w = Math.max(...layers.map((l) => l.name.length), 5);
          const t = Math.max(...layers.map((l) => l.type.length), 4);
          process.stdout.write(`${'layer'.padEnd(w)}  ${'type'.padEnd(t)}  output shape\n`);
          for (const l of layers) {
            process.stdout.write(
              `${l.name.padEnd(w)}  ${l.type.padEnd(t)}  [${l.outputShape.join(', ')}]${l.bottleneck ? '  <- bottleneck (default)' : ''}\n`,
            );
          }
        }
        explainer.dispose();
      }),
    );
}
