import { Command } from 'commander';
import { SegGradCamError } from '../../errors.js';
import { explanationFigure } from '../../figure.js';
import { encodeImageFor } from '../../io/files.js';
import { checkDistinctOutputs, writeOutputs } from '../../io/output-set.js';
import { parseBaseline } from '../../methods/baseline.js';
import { methodNames, type MethodOptions } from '../../methods/index.js';
import { COLORMAPS, type ColormapName } from '../../render/index.js';
import type { ScoreKind } from '../../region/objective.js';
import { oneOf, parseInteger, parseList, parseNumberAtLeast, parseNumberIn } from '../parse.js';
import { regionFromFlags, type RegionFlags } from '../region-options.js';
import { LIMIT_INPUT_PIXELS, openExplainer, openImage, type ModelOptions } from '../session.js';
import { addModelOptions, run } from '../shared-options.js';
import { explanationJson } from '../../io/json.js';

interface ExplainFlags extends ModelOptions, RegionFlags {
  image?: string;
  limitInputPixels?: string;
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
  layers?: string;
  augment?: boolean;
  truncate?: boolean;
  samples?: string;
  sigma?: string;
  seed?: string;
  steps?: string;
  baseline?: string;
  maxChannels?: string;
  batchSize?: string;
  iterations?: string;
  maskSize?: string;
  lambda?: string;
  lrpRule?: string;
  epsilon?: string;
}

/** Optional flags: parsed only when given. */
const integerFlag = (text: string | undefined, flag: string, min: number) =>
  text === undefined ? undefined : parseInteger(text, flag, min);
const numberFlag = (text: string | undefined, flag: string) => (text === undefined ? undefined : parseNumberAtLeast(text, flag, 0));

/** Method options from the flags that were given (each method reads its own). */
function methodOptionsFrom(flags: ExplainFlags): MethodOptions {
  const o: MethodOptions = {
    samples: integerFlag(flags.samples, '--samples', 1),
    sigma: numberFlag(flags.sigma, '--sigma'),
    seed: integerFlag(flags.seed, '--seed', 0),
    steps: integerFlag(flags.steps, '--steps', 1),
    baseline: flags.baseline === undefined ? undefined : parseBaseline(flags.baseline),
    maxChannels: integerFlag(flags.maxChannels, '--max-channels', 1),
    batchSize: integerFlag(flags.batchSize, '--batch-size', 1),
    iterations: integerFlag(flags.iterations, '--iterations', 1),
    maskResolution: integerFlag(flags.maskSize, '--mask-size', 1),
    lambda: numberFlag(flags.lambda, '--lambda'),
    rule: flags.lrpRule === undefined ? undefined : oneOf(flags.lrpRule, '--lrp-rule', ['epsilon', 'alpha-beta'] as const),
    epsilon: numberFlag(flags.epsilon, '--epsilon'),
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as MethodOptions;
}

export function explainCommand(): Command {
  return addModelOptions(
    new Command('explain').description('explain why the model assigns class c to the region M of an image (Seg-Grad-CAM)').addHelpText(
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

Methods (--method): CAM family at --layer: seg-grad-cam (default), hires-cam, grad-cam++,
  xgrad-cam, layer-cam, eigen-cam, score-cam [--max-channels --batch-size --baseline],
  cam (GAP + dense classifiers). At the input image: saliency, gradient-x-input,
  smoothgrad [--samples --sigma --seed], integrated-gradients [--steps --baseline],
  grid-saliency [--iterations --mask-size --lambda --baseline], lrp [--lrp-rule --epsilon].

Examples:
  seg-grad-cam explain --object 40,30 --out figure.png
  seg-grad-cam explain -m models/selfie/selfie.json --image photo.png --class 1 --class-region --layer add_4__xeno_compat__1`,
    ),
  )
    .option('-i, --image <file>', 'PNG or JPEG image (default: the bundled sample tile)')
    .option(...LIMIT_INPUT_PIXELS)
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
    .option('--layers <a,b,…>', 'several layers: the mean of their [0, 1] heatmaps (replaces --layer)')
    .option('--augment', 'test-time augmentation: average over the flipped and ×0.9/×1.1 brightened image')
    .option('--truncate', "zero the heatmap outside the pixels M's score depends on")
    .option('--samples <n>', 'smoothgrad: noisy samples (25)')
    .option('--sigma <f>', 'smoothgrad: noise σ as a fraction of the input range (0.15)')
    .option('--seed <n>', 'smoothgrad: noise seed (0)')
    .option('--steps <n>', 'integrated-gradients: steps (32)')
    .option('--baseline <b>', 'integrated-gradients, grid-saliency, score-cam: black, blurred or a number (black)')
    .option('--max-channels <n>', 'score-cam: channels scored, by mean activation (32)')
    .option('--batch-size <n>', 'images per model call (score-cam 16, smoothgrad and integrated-gradients 8)')
    .option('--iterations <n>', 'grid-saliency: optimisation steps (100)')
    .option('--mask-size <n>', 'grid-saliency: mask grid n×n (16)')
    .option('--lambda <x>', 'grid-saliency: weight of the mask size (0.05)')
    .option('--lrp-rule <rule>', 'lrp: epsilon or alpha-beta (epsilon)')
    .option('--epsilon <x>', 'lrp: ε of the ε-rule (0.01)')
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
        const method = oneOf(flags.method, '--method', methodNames());
        const methodOptions = methodOptionsFrom(flags);
        const layers = parseList(flags.layers, '--layers');
        if (!/\.(png|jpe?g)$/i.test(flags.out)) throw new SegGradCamError(`--out must end in .png, .jpg or .jpeg: ${flags.out}`, 'usage');
        if (typeof flags.json === 'string')
          await checkDistinctOutputs([
            { path: flags.out, label: '--out' },
            { path: flags.json, label: '--json' },
          ]);

        const { image, imagePath } = await openImage(flags.image, flags.limitInputPixels);
        const region = await regionFromFlags(flags, image);
        const { explainer, modelPath } = await openExplainer(flags);
        const started = performance.now();
        const e = await explainer.explain(image, {
          region,
          classId: flags.class,
          layer: flags.layer,
          layers,
          score,
          method,
          methodOptions,
          augment: !!flags.augment,
          truncate: !!flags.truncate,
        });
        const ms = performance.now() - started;
        const marker = region.kind === 'pixel' || region.kind === 'object' ? ([region.x, region.y] as [number, number]) : undefined;
        const figure = explanationFigure(image, e, { colormap, opacity, marker, layout, classNames: explainer.options.classNames });

        // Encode everything first, then write the figure and the JSON file together: all or none.
        const figureBytes = encodeImageFor(flags.out, figure);
        const runtime = explainer.adapter.runtime;
        const json =
          flags.json !== undefined
            ? JSON.stringify(explanationJson(e, { model: modelPath, image: imagePath, region, runtime, ms, heatmap: !!flags.jsonHeatmap }))
            : null;
        const outputs = [{ path: flags.out, bytes: figureBytes, label: '--out' }];
        if (json !== null && typeof flags.json === 'string')
          outputs.push({ path: flags.json, bytes: new TextEncoder().encode(json + '\n'), label: '--json' });
        await writeOutputs(outputs);
        if (json !== null && typeof flags.json !== 'string') process.stdout.write(json + '\n');
        const cls = e.className ? `${e.classIndex} (${e.className})` : `${e.classIndex}`;
        const px = e.regionMask.reduce((a, b) => a + b, 0);
        process.stderr.write(
          `${e.method}: class ${cls}, ${px} output pixels, layer ${(e.layers ?? [e.layer]).map((l) => `${l.name} [${l.outputShape.join('x')}]`).join(' + ')}, S = ${e.scoreValue.toFixed(3)}` +
            `${e.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}; ${ms.toFixed(0)} ms on ${runtime}; wrote ${flags.out}\n`,
        );
        explainer.dispose();
      }),
    );
}
