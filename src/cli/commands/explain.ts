import { Command } from 'commander';
import { SegGradCamError } from '../../errors.js';
import { explanationFigure } from '../../figure.js';
import { encodeImageFor } from '../../io/files.js';
import { checkDistinctOutputs, writeOutputs } from '../../io/output-set.js';
import { methodNames } from '../../methods/index.js';
import { COLORMAPS, type ColormapName } from '../../render/index.js';
import type { ScoreKind } from '../../region/objective.js';
import { addMethodOptions, checkMethodOptions, explainOptionsFrom, methodOptionsFrom, type MethodFlags } from '../method-options.js';
import { oneOf, parseList, parseNumberIn } from '../parse.js';
import { regionFromFlags, type RegionFlags } from '../region-options.js';
import { LIMIT_INPUT_PIXELS, openExplainer, openImage, type ModelOptions } from '../session.js';
import { addModelOptions, run } from '../common-options.js';
import { explanationJson } from '../../io/json.js';

interface ExplainFlags extends ModelOptions, RegionFlags, MethodFlags {
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
}

export function explainCommand(): Command {
  return addMethodOptions(
    addModelOptions(
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
  xgrad-cam, layer-cam, eigen-cam, seg-eigen-cam, eigen-grad-cam, kpca-cam [--kernel --gamma],
  fem [--sigmas], finer-cam [--comparisons --finer-alpha], ablation-cam [--batch-size],
  score-cam [--variant --max-channels --batch-size --baseline], cam (GAP + dense classifiers).
  At the input image: saliency, gradient-x-input, smoothgrad [--samples --sigma --seed],
  integrated-gradients [--steps --baseline], grid-saliency [--iterations --mask-size --lambda --baseline],
  lrp [--lrp-rule --epsilon --lrp-first-layer --lrp-low --lrp-high], occlusion [--window --stride --baseline],
  rise [--samples --mask-size --keep-probability --seed --baseline], full-grad, guided-backprop;
  guided-grad-cam (at --layer).
  Also at the input: kernel-shap [--segmentation --segments --compactness --samples --seed --baseline];
  at --layer: shapley-cam (TF.js models only: it needs second derivatives).
  --negative, --contrast-class C [--contrast-weight B] and --normalize max|minmax apply to every method
  that has them (see docs/methods.md).

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
      .option('--truncate', "zero the heatmap outside the pixels M's score depends on"),
  )
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
        checkMethodOptions(method, methodOptions);
        const { contrastClass, contrastWeight, normalize } = explainOptionsFrom(flags);
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
          contrastClass,
          contrastWeight,
          normalize,
        });
        const ms = performance.now() - started;
        const marker = region.kind === 'pixel' || region.kind === 'object' ? ([region.x, region.y] as [number, number]) : undefined;
        const figure = explanationFigure(image, e, { colormap, opacity, marker, layout, classNames: explainer.options.classNames });

        // Encode everything first, then write the figure and the JSON file together: all or none.
        const figureBytes = encodeImageFor(flags.out, figure);
        const runtime = explainer.adapter.runtime;
        const json =
          flags.json !== undefined
            ? JSON.stringify(
                explanationJson(e, {
                  model: modelPath,
                  image: imagePath,
                  region,
                  runtime,
                  notes: explainer.adapter.notes,
                  ms,
                  heatmap: !!flags.jsonHeatmap,
                }),
              )
            : null;
        const outputs = [{ path: flags.out, bytes: figureBytes, label: '--out' }];
        if (json !== null && typeof flags.json === 'string')
          outputs.push({ path: flags.json, bytes: new TextEncoder().encode(json + '\n'), label: '--json' });
        await writeOutputs(outputs);
        if (json !== null && typeof flags.json !== 'string') process.stdout.write(json + '\n');
        const named = (i: number, name?: string) => (name ? `${i} (${name})` : `${i}`);
        const contrast =
          e.contrastClassIndex === undefined
            ? ''
            : ` rather than ${named(e.contrastClassIndex, e.contrastClassName)}${e.contrastWeight === 1 ? '' : ` (β = ${e.contrastWeight})`}`;
        const cls = named(e.classIndex, e.className) + contrast + (e.negative ? ' (negative map)' : '');
        const px = e.regionMask.reduce((a, b) => a + b, 0);
        process.stderr.write(
          `${e.method}: class ${cls}, ${px} output pixels, layer ${(e.layers ?? [e.layer]).map((l) => `${l.name} [${l.outputShape.join('x')}]`).join(' + ')}, S = ${e.scoreValue.toFixed(3)}` +
            `${e.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}; ${ms.toFixed(0)} ms on ${runtime}; wrote ${flags.out}\n`,
        );
        explainer.dispose();
      }),
    );
}
