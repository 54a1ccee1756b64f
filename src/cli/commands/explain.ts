import { Command } from 'commander';
import { SegGradCamError } from '../../errors.js';
import { explanationFigure } from '../../figure.js';
import { encodeImageFor, writeFileAtomic } from '../../io/files.js';
import { methodNames } from '../../methods/index.js';
import { COLORMAPS, type ColormapName } from '../../render/index.js';
import type { ScoreKind } from '../../target/objective.js';
import { oneOf, parseNumberIn } from '../parse.js';
import { regionFromFlags, type RegionFlags } from '../region-options.js';
import { openExplainer, openImage, type ModelOptions } from '../session.js';
import { addModelOptions, run } from '../shared-options.js';
import { explanationJson } from '../json.js';

interface ExplainFlags extends ModelOptions, RegionFlags {
  image?: string;
  layer?: string;
  class?: string;
  score: string;
  method: string;
  out: string;
  json?: string | boolean;
  jsonHeatmap?: boolean;
  colormap: string;
  opacity: string;
  figure: string;
}

export function explainCommand(): Command {
  return addModelOptions(
    new Command('explain')
      .description('explain why the model assigns class c to the region M of an image (Seg-Grad-CAM)')
      .addHelpText(
        'after',
        `
Regions (exactly one; coordinates in the original image's pixels, x right, y down):
  --pixel x,y            one pixel
  --pixels 'x,y;x,y'     a list of pixels
  --box x0,y0,x1,y1      a box, corners included
  --mask FILE            a binary mask image the size of the input (white = in M)
  --class-region         every pixel predicted as the class (needs --class)
  --object x,y           the connected component of the prediction under the pixel
  --whole                the whole image

Examples:
  seg-grad-cam explain --object 40,30 --out figure.png
  seg-grad-cam explain -m models/selfie/selfie.json --image photo.png --class 1 --class-region --layer add_4__xeno_compat__1`,
      ),
  )
    .option('-i, --image <file>', 'PNG or JPEG image (default: the bundled sample tile)')
    .option('-l, --layer <name>', "layer to explain, or 'bottleneck' (see `seg-grad-cam layers`)", 'bottleneck')
    .option('-c, --class <c>', 'class index or name (default: the prediction in M)')
    .option('--pixel <x,y>')
    .option('--pixels <list>')
    .option('--box <x0,y0,x1,y1>')
    .option('--mask <file>')
    .option('--class-region')
    .option('--object <x,y>')
    .option('--whole')
    .option('--score <kind>', 'logits or probability', 'logits')
    .option('--method <name>', `CAM method: ${methodNames().join(', ')}`, 'seg-grad-cam')
    .option('-o, --out <file>', 'figure to write (.png or .jpg)', 'seg-grad-cam.png')
    .option('--figure <layout>', 'panels (input · prediction · heatmap · overlay) or overlay', 'panels')
    .option('--colormap <name>', `heatmap colours: ${COLORMAPS.join(', ')}`, 'turbo')
    .option('--opacity <a>', 'heatmap opacity over the image, 0..1', '0.5')
    .option('--json [file]', 'also write the result as JSON (to stdout without a file)')
    .option('--json-heatmap', 'include the full-resolution heatmap in the JSON')
    .action((flags: ExplainFlags) =>
      run(async () => {
        // Check every flag before the slow work, so a typo fails at once.
        const score = oneOf(flags.score, '--score', ['logits', 'probability'] as const) as ScoreKind;
        const colormap = oneOf(flags.colormap, '--colormap', COLORMAPS) as ColormapName;
        const opacity = parseNumberIn(flags.opacity, '--opacity', 0, 1);
        const layout = oneOf(flags.figure, '--figure', ['panels', 'overlay'] as const);
        const outBytes = (img: Parameters<typeof encodeImageFor>[1]) => encodeImageFor(flags.out, img);
        if (!/\.(png|jpe?g)$/i.test(flags.out)) throw new SegGradCamError(`--out must end in .png, .jpg or .jpeg: ${flags.out}`, 'usage');

        const { image, imagePath } = await openImage(flags.image);
        const region = await regionFromFlags(flags, image);
        const { explainer, modelPath, backend } = await openExplainer(flags);
        const started = performance.now();
        const e = await explainer.explain(image, { region, classId: flags.class, layer: flags.layer, score, method: flags.method });
        const ms = performance.now() - started;
        const marker = region.kind === 'pixel' || region.kind === 'object' ? ([region.x, region.y] as [number, number]) : undefined;
        const figure = explanationFigure(image, e, { colormap, opacity, marker, layout, classNames: explainer.options.classNames });

        // Encode everything first, then write: a failure leaves no output behind.
        const figureBytes = outBytes(figure);
        const json = flags.json !== undefined ? JSON.stringify(explanationJson(e, { model: modelPath, image: imagePath, region, backend, ms, heatmap: !!flags.jsonHeatmap })) : null;
        await writeFileAtomic(flags.out, figureBytes);
        if (json !== null) {
          if (typeof flags.json === 'string') await writeFileAtomic(flags.json, new TextEncoder().encode(json + '\n'));
          else process.stdout.write(json + '\n');
        }
        const cls = e.className ? `${e.classIndex} (${e.className})` : `${e.classIndex}`;
        const px = e.regionMask.reduce((a, b) => a + b, 0);
        process.stderr.write(
          `class ${cls}, ${px} output pixels, layer ${e.layer.name} [${e.layer.outputShape.join('x')}], S = ${e.scoreValue.toFixed(3)}` +
            `${e.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}; ${ms.toFixed(0)} ms on ${backend}; wrote ${flags.out}\n`,
        );
        explainer.dispose();
      }),
    );
}
