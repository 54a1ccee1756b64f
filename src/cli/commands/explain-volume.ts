import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { setupBackend } from '../../backend/index.js';
import { nodeRuntime } from '../../engine/onnx/node.js';
import { SegGradCamError } from '../../errors.js';
import { encodeImageFor } from '../../io/files.js';
import { encodeNifti1, gzip, type NiftiGeometry } from '../../io/nifti.js';
import { readNiftiFile } from '../../io/nifti-node.js';
import { checkDistinctOutputs, writeOutputs, type Output } from '../../io/output-set.js';
import { normalizeInPlace } from '../../postprocess/heatmap.js';
import { COLORMAPS, type ColormapName } from '../../render/index.js';
import { explainVolumeGrid, openVolumeModel } from '../../volume/explain-grid.js';
import { clipPercentiles, ctWindow, zScore } from '../../volume/intensity.js';
import { checkVolumeMethod, VOLUME_METHODS } from '../../volume/methods.js';
import { volumeFigure } from '../../volume/montage.js';
import type { Connectivity, Dims3, VolumeRegion, Voxel } from '../../volume/regions.js';
import { readSliceFolder } from '../../volume/slices-node.js';
import { run } from '../common-options.js';
import { inPackage } from '../defaults.js';
import { volumeClassId, volumeClassNames } from './explain-volume-labels.js';
import { explainOptionsFrom, methodOptionsFrom, type MethodFlags } from '../method-options.js';
import { oneOf, parseInteger, parseNumberIn } from '../parse.js';

/** The bundled 3-D model (a small 3-D U-Net trained on the synthetic volume set) and a sample volume for it. */
export const DEFAULT_VOLUME_MODEL = 'models/volume-synthetic/model.onnx';
export const DEFAULT_VOLUME = 'models/volume-synthetic/sample.nii.gz';

interface VolumeFlags extends MethodFlags {
  model?: string;
  input?: string;
  slices?: string;
  frame?: string;
  zscore?: boolean;
  clipPercentiles?: string;
  ctWindow?: string;
  voxel?: string;
  voxels?: string;
  box?: string;
  mask?: string;
  classRegion?: boolean;
  component?: string;
  connectivity: string;
  whole?: boolean;
  class?: string;
  labels?: string;
  layer: string;
  output?: string;
  method: string;
  patch?: string;
  overlap: string;
  out: string;
  raw?: string;
  figure?: string;
  json?: string | boolean;
  colormap: string;
  opacity: string;
}

function integers(text: string, count: number, flag: string, form: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== count || parts.some((p) => !/^-?\d+$/.test(p)))
    throw new SegGradCamError(`${flag} expects ${form} (integers), got '${text}'`, 'usage');
  return parts.map(Number);
}
const voxelOf = (text: string, flag: string) => integers(text, 3, flag, 'd,h,w') as Voxel;

/** --voxels: 'd,h,w;d,h,w;…' inline, or a file with one d,h,w per line. */
async function voxelList(text: string): Promise<Voxel[]> {
  let list = text;
  if (!/^[\d\s,;-]+$/.test(text)) {
    try {
      list = await readFile(text, 'utf8');
    } catch (e) {
      throw new SegGradCamError(`--voxels: cannot read ${text}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'file');
    }
  }
  const items = list
    .split(/[;\n\r]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith('#'));
  if (items.length === 0) throw new SegGradCamError(`--voxels: no voxel in '${text}'`, 'usage');
  return items.map((s) => voxelOf(s, '--voxels'));
}

const REGION_FLAGS = ['voxel', 'voxels', 'box', 'mask', 'classRegion', 'component', 'whole'] as const;
const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;

async function regionFrom(flags: VolumeFlags, dims: Dims3): Promise<VolumeRegion> {
  const given = REGION_FLAGS.filter((k) => flags[k] !== undefined && flags[k] !== false);
  if (given.length === 0) throw new SegGradCamError(`choose a region M with one of ${REGION_FLAGS.map(flagName).join(', ')}`, 'usage');
  if (given.length > 1) throw new SegGradCamError(`choose one region, not ${given.length}: ${given.map(flagName).join(' and ')}`, 'usage');
  const connectivity = Number(oneOf(flags.connectivity, '--connectivity', ['6', '26'] as const)) as Connectivity;
  switch (given[0]) {
    case 'voxel':
      return { kind: 'voxel', voxel: voxelOf(flags.voxel as string, '--voxel') };
    case 'voxels':
      return { kind: 'voxels', voxels: await voxelList(flags.voxels as string) };
    case 'box':
      return {
        kind: 'box',
        box: integers(flags.box as string, 6, '--box', 'd0,h0,w0,d1,h1,w1') as [number, number, number, number, number, number],
      };
    case 'mask': {
      const m = await readNiftiFile(flags.mask as string);
      const md: Dims3 = [m.dims[2], m.dims[1], m.dims[0]];
      if (md.some((x, i) => x !== dims[i]))
        throw new SegGradCamError(`--mask ${flags.mask} is ${md.join('x')} (d, h, w), the volume ${dims.join('x')}`, 'region');
      return { kind: 'mask', mask: m.data };
    }
    case 'classRegion':
      return { kind: 'class' };
    case 'component':
      return { kind: 'component', voxel: voxelOf(flags.component as string, '--component'), connectivity };
    case 'whole':
      return { kind: 'whole' };
  }
}

/** The volume, intensity-preprocessed in the order: CT window, percentile clipping, z-score. */
function preprocess(data: Float32Array, flags: VolumeFlags): Float32Array {
  let x = data;
  if (flags.ctWindow !== undefined) {
    const parts = flags.ctWindow.split(',').map(Number);
    const w =
      parts.length === 2 && parts.every(Number.isFinite) && flags.ctWindow.trim() !== ''
        ? { level: parts[0], width: parts[1] }
        : flags.ctWindow;
    try {
      x = ctWindow(x, w);
    } catch (e) {
      throw e instanceof SegGradCamError ? new SegGradCamError(`--ct-window: ${e.message}`, 'usage') : e;
    }
  }
  if (flags.clipPercentiles !== undefined) {
    const p = flags.clipPercentiles.split(',').map((s) => s.trim());
    if (p.length !== 2 || p.some((s) => s === '' || !Number.isFinite(Number(s))))
      throw new SegGradCamError(`--clip-percentiles expects lo,hi (percentiles), got '${flags.clipPercentiles}'`, 'usage');
    x = clipPercentiles(x, { low: Number(p[0]), high: Number(p[1]) });
  }
  if (flags.zscore) x = zScore(x);
  return x;
}

const isNifti = (p: string) => /\.nii(\.gz)?$/i.test(p);

async function nifti(data: Float32Array, dims: Dims3, geometry: NiftiGeometry, path: string, description: string): Promise<Uint8Array> {
  const raw = encodeNifti1(data, [dims[2], dims[1], dims[0]], geometry, description);
  return path.toLowerCase().endsWith('.gz') ? gzip(raw) : raw;
}

export function explainVolumeCommand(): Command {
  return new Command('explain-volume')
    .description('explain why a 3-D segmentation model (ONNX) assigns class c to the region M of a volume (Seg-Grad-CAM in 3-D)')
    .addHelpText(
      'after',
      `
Coordinates are voxels (d, h, w) of the volume as stored: d = NIfTI k (slice), h = j, w = i.
Regions (exactly one):
  --voxel d,h,w            one voxel
  --voxels LIST|FILE       'd,h,w;d,h,w;…', or a file with one d,h,w per line
  --box d0,h0,w0,d1,h1,w1  a box, corners included
  --mask FILE.nii[.gz]     a label volume on the same grid (non-zero = in M)
  --class-region           every voxel predicted as the class
  --component d,h,w        the connected 3-D object of the prediction at the voxel (--connectivity 26 or 6)
  --whole                  the whole volume
Intensity (applied in this order): --ct-window NAME|level,width, --clip-percentiles lo,hi, --zscore.
Volumes larger than the model's input are explained by sliding windows (--patch for models with free
sizes, --overlap 0.5 by default; Gaussian blending as nnU-Net/MONAI). See docs/volumes.md.

Examples:
  seg-grad-cam explain-volume --voxel 16,16,16 --figure slices.png
  seg-grad-cam explain-volume -m unet3d.onnx -i ct.nii.gz --ct-window soft-tissue --class 1 --class-region --out heat.nii.gz --raw cam.nii.gz --json out.json`,
    )
    .option('-m, --model <model.onnx>', `3-D ONNX model (default: the bundled ${DEFAULT_VOLUME_MODEL})`)
    .option('-i, --input <volume.nii[.gz]>', `NIfTI-1/2 volume (default: ${DEFAULT_VOLUME} when no --slices)`)
    .option('--slices <folder>', 'a folder of PNG slices (axial, natural name order) instead of --input')
    .option('--frame <n>', 'the volume of a 4-D NIfTI file (0)')
    .option('--zscore', 'z-score the volume (mean 0, std 1 over all voxels)')
    .option('--clip-percentiles <lo,hi>', 'clip to these percentiles of the volume (e.g. 0.5,99.5)')
    .option('--ct-window <name|level,width>', 'CT window mapped onto [0, 1]: brain, soft-tissue, lung, bone, or level,width in HU')
    .option('--voxel <d,h,w>')
    .option('--voxels <list|file>')
    .option('--box <d0,h0,w0,d1,h1,w1>')
    .option('--mask <file.nii.gz>')
    .option('--class-region')
    .option('--component <d,h,w>')
    .option('--connectivity <n>', '--component: 26 (faces, edges, corners) or 6 (faces)', '26')
    .option('--whole')
    .option('-c, --class <c>', 'class index or name (default: the prediction in M)')
    .option('--labels <file>', 'class names (labels.json/.txt; default: labels.json or labels.txt beside the model)')
    .option('-l, --layer <name>', "layer to explain, or 'bottleneck' (the smallest grid)", 'bottleneck')
    .option('--output <name>', 'the model output to explain (default: the full-resolution one; deep supervision)')
    .option('--method <name>', `CAM method: ${VOLUME_METHODS.join(', ')}`, 'seg-grad-cam')
    .option('--negative', 'the negative map ReLU(−Σ α A)')
    .option('--normalize <how>', 'heatmap scaling: max (default) or minmax')
    .option('--kernel <k>', 'kpca-cam: sigmoid (default), rbf or linear')
    .option('--gamma <x>', 'kpca-cam: kernel γ (1/channels)')
    .option('--sigmas <k>', 'fem: threshold μ + k σ (2)')
    .option('--comparisons <n>', 'finer-cam: classes compared with (3)')
    .option(
      '--max-channels <n>',
      'score-cam: channels scored, those of largest mean activation (32; every one in the pytorch-grad-cam variant)',
    )
    .option('--variant <name>', 'score-cam: increase (default) or pytorch-grad-cam')
    .option('--baseline <b>', "score-cam: what masked-out voxels become: black (the volume's minimum, default), mean, or a number")
    .option('--finer-alpha <a>', 'finer-cam: weight of the compared classes (1)')
    .option(
      '--patch <d,h,w>',
      "sliding-window patch for models with free input sizes (default: the model's fixed input, else the whole volume)",
    )
    .option('--overlap <f>', 'sliding windows: overlap of neighbouring patches, 0.5 ≤ f < 1', '0.5')
    .option('-o, --out <heatmap.nii.gz>', 'the heatmap in [0, 1] on the volume grid, with the input affine', 'seg-grad-cam.nii.gz')
    .option('--raw <cam.nii.gz>', 'also the raw float32 CAM (not normalised) on the volume grid')
    .option('--figure <slices.png>', 'also a figure: axial/coronal/sagittal slices through M’s centre and an axial montage')
    .option('--json [file]', 'also the result as JSON (to stdout without a file)')
    .option('--colormap <name>', `figure colours: ${COLORMAPS.join(', ')}`, 'turbo')
    .option('--opacity <a>', 'figure heatmap opacity, 0..1', '0.5')
    .action((flags: VolumeFlags) =>
      run(async () => {
        const started = performance.now();
        // Every flag first, so a typo fails before the slow work.
        const method = checkVolumeMethod(flags.method);
        const methodOptions = methodOptionsFrom(flags);
        const { normalize } = explainOptionsFrom(flags);
        const colormap = oneOf(flags.colormap, '--colormap', COLORMAPS) as ColormapName;
        const opacity = parseNumberIn(flags.opacity, '--opacity', 0, 1);
        const overlap = Number(flags.overlap);
        if (flags.overlap.trim() === '' || !(overlap >= 0.5 && overlap < 1))
          throw new SegGradCamError(`--overlap expects a number in [0.5, 1), got '${flags.overlap}'`, 'usage');
        const patch = flags.patch === undefined ? undefined : (integers(flags.patch, 3, '--patch', 'd,h,w') as Dims3);
        if (patch?.some((p) => p < 1)) throw new SegGradCamError(`--patch sizes must be positive, got '${flags.patch}'`, 'usage');
        if (flags.class !== undefined && flags.class.trim() === '')
          throw new SegGradCamError('--class expects an index or a name', 'usage');
        if (flags.input !== undefined && flags.slices !== undefined)
          throw new SegGradCamError('give --input or --slices, not both', 'usage');
        if (!isNifti(flags.out)) throw new SegGradCamError(`--out must end in .nii or .nii.gz: ${flags.out}`, 'usage');
        if (flags.raw !== undefined && !isNifti(flags.raw))
          throw new SegGradCamError(`--raw must end in .nii or .nii.gz: ${flags.raw}`, 'usage');
        if (flags.figure !== undefined && !/\.(png|jpe?g)$/i.test(flags.figure))
          throw new SegGradCamError(`--figure must end in .png, .jpg or .jpeg: ${flags.figure}`, 'usage');
        const named: Array<{ path: string; label: string }> = [{ path: flags.out, label: '--out' }];
        if (flags.raw) named.push({ path: flags.raw, label: '--raw' });
        if (flags.figure) named.push({ path: flags.figure, label: '--figure' });
        if (typeof flags.json === 'string') named.push({ path: flags.json, label: '--json' });
        await checkDistinctOutputs(named);

        // The volume.
        let data: Float32Array;
        let dims: Dims3;
        let geometry: NiftiGeometry;
        let inputPath: string;
        if (flags.slices !== undefined) {
          const s = await readSliceFolder(flags.slices);
          [data, dims, geometry, inputPath] = [s.data, s.dims, s.geometry, flags.slices];
        } else {
          inputPath = flags.input ?? inPackage(DEFAULT_VOLUME);
          const frame = flags.frame === undefined ? undefined : parseInteger(flags.frame, '--frame', 0);
          const v = await readNiftiFile(inputPath, { frame });
          [data, dims, geometry] = [v.data, [v.dims[2], v.dims[1], v.dims[0]], v];
        }
        const x = preprocess(data, flags);
        const region = await regionFrom(flags, dims);

        // The model.
        const modelPath = flags.model ?? inPackage(DEFAULT_VOLUME_MODEL);
        if (!flags.model && !existsSync(modelPath))
          throw new SegGradCamError(`the bundled volume model is missing (${modelPath}): give -m`, 'file');
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await readFile(modelPath));
        } catch (e) {
          throw new SegGradCamError(`cannot read ${modelPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'file');
        }
        await setupBackend('cpu');
        const model = await openVolumeModel(bytes, nodeRuntime, dims, { patch, output: flags.output });
        try {
          const classNames = await volumeClassNames(modelPath, model.logitsDims[1], flags.labels);
          const classId = volumeClassId(flags.class, model.logitsDims[1], classNames);
          const sliding = model.inputDims.slice(2).some((p, i) => p !== dims[i]);
          let last = -1;
          const onPatch = sliding
            ? (done: number, total: number, stage: string) => {
                const pct = Math.floor((100 * done) / total);
                if (pct !== last || done === total) process.stderr.write(`\r${stage} patch ${done}/${total}${done === total ? '\n' : ''}`);
                last = pct;
              }
            : undefined;
          const e = await explainVolumeGrid(model, x, dims, {
            region,
            classId,
            layer: flags.layer === 'bottleneck' ? undefined : flags.layer,
            method,
            methodOptions,
            overlap,
            onPatch,
          });
          const heat = normalizeInPlace(Float32Array.from(e.cam), normalize ?? 'max');

          // Encode everything, then write all files together: all or none.
          const outputs: Output[] = [
            {
              path: flags.out,
              bytes: await nifti(heat.heatmap, dims, geometry, flags.out, `seg-grad-cam ${method} heatmap`),
              label: '--out',
            },
          ];
          if (flags.raw)
            outputs.push({
              path: flags.raw,
              bytes: await nifti(e.cam, dims, geometry, flags.raw, `seg-grad-cam ${method} raw CAM`),
              label: '--raw',
            });
          if (flags.figure)
            outputs.push({
              path: flags.figure,
              bytes: encodeImageFor(flags.figure, volumeFigure(x, dims, e.cam, e.mask, { colormap, opacity })),
              label: '--figure',
            });
          const ms = performance.now() - started;
          const json =
            flags.json === undefined
              ? null
              : JSON.stringify({
                  model: modelPath,
                  input: inputPath,
                  dims,
                  affine: geometry.affine,
                  method: e.method,
                  layer: e.layer,
                  layerDims: e.camDims,
                  class: e.classId,
                  className: classNames?.[e.classId],
                  score: e.score,
                  alpha: Array.from(e.alpha),
                  weights: e.weights ? Array.from(e.weights) : null,
                  region,
                  regionVoxels: e.mask.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0),
                  camMax: heat.max,
                  empty: heat.empty,
                  normalize: normalize ?? 'max',
                  sliding: e.sliding,
                  patch: model.inputDims.slice(2),
                  overlap: e.sliding ? overlap : undefined,
                  patches: e.patches,
                  timings: { ...e.timings, wallMs: ms },
                  outputs: { out: flags.out, raw: flags.raw, figure: flags.figure },
                });
          if (json !== null && typeof flags.json === 'string')
            outputs.push({ path: flags.json, bytes: new TextEncoder().encode(json + '\n'), label: '--json' });
          await writeOutputs(outputs);
          if (json !== null && typeof flags.json !== 'string') process.stdout.write(json + '\n');
          process.stderr.write(
            `${e.method}: class ${e.classId}${classNames ? ` (${classNames[e.classId]})` : ''}, layer ${e.layer} [${e.camDims.join('x')}], S = ${e.score.toFixed(3)}` +
              `${heat.empty ? ' — the CAM is zero everywhere (no positive evidence at this layer)' : ''}` +
              `${e.sliding ? `, ${e.patches.touched} of ${e.patches.total} patches run backward` : ''}; ${ms.toFixed(0)} ms; wrote ${outputs.map((o) => o.path).join(', ')}\n`,
          );
        } finally {
          await model.dispose();
        }
      }),
    );
}
