import { Command } from 'commander';
import { encodeImageFor, writeFileAtomic } from '../../io/files.js';
import { defaultPalette, labelImage, resizeLabelsNearest } from '../../render/index.js';
import { LIMIT_INPUT_PIXELS, openExplainer, openImage, type ModelOptions } from '../session.js';
import { addModelOptions, run } from '../common-options.js';

export function predictCommand(): Command {
  return addModelOptions(
    new Command('predict').description('segment an image: write the label map in class colours and print the class areas'),
  )
    .option('-i, --image <file>', 'PNG or JPEG image (default: the bundled sample tile)')
    .option(...LIMIT_INPUT_PIXELS)
    .option('-o, --out <file>', 'label map image to write (.png)', 'prediction.png')
    .option('--json', 'print class areas as JSON')
    .action((flags: ModelOptions & { image?: string; limitInputPixels?: string; out: string; json?: boolean }) =>
      run(async () => {
        const { image } = await openImage(flags.image, flags.limitInputPixels);
        const { explainer } = await openExplainer(flags);
        // One plain run of the model: nothing is explained after it.
        const p = await explainer.predict(image, { keepPass: false });
        const labels = resizeLabelsNearest(p.labels, p.width, p.height, image.width, image.height);
        await writeFileAtomic(
          flags.out,
          encodeImageFor(flags.out, labelImage(Int32Array.from(labels), image.width, image.height, defaultPalette())),
        );
        const counts = new Array<number>(explainer.classCount).fill(0);
        for (const l of p.labels) counts[l]++;
        const names = explainer.options.classNames;
        const rows = counts
          .map((n, c) => ({ class: c, name: names?.[c] ?? null, pixels: n, share: n / p.labels.length }))
          .filter((r) => r.pixels > 0);
        if (flags.json) process.stdout.write(JSON.stringify({ outputSize: [p.width, p.height], classes: rows }, null, 2) + '\n');
        else
          for (const r of rows)
            process.stdout.write(
              `${String(r.class).padStart(3)}  ${(r.name ?? '').padEnd(12)} ${(100 * r.share).toFixed(1).padStart(5)}%\n`,
            );
        process.stderr.write(`wrote ${flags.out}\n`);
        explainer.dispose();
      }),
    );
}
