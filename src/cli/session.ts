import { setupBackend, type BackendName } from '../backend/index.js';
import type { Explainer } from '../explain.js';
import type { RgbaImage } from '../image.js';
import { readImageFile } from '../io/files.js';
import { loadExplainer } from '../node.js';
import { DEFAULT_IMAGE, DEFAULT_MODEL, inPackage } from './defaults.js';
import { readLabelsFile } from '../io/labels-node.js';
import { oneOf, parseInteger, parseRange } from './parse.js';
import { DEFAULT_PIXEL_LIMIT } from '../io/codec.js';

/** Options every model-using command shares. */
export interface ModelOptions {
  model?: string;
  labels?: string;
  output?: string;
  inputRange?: string;
  backend?: string;
}

export const BACKENDS = ['wasm', 'cpu'] as const;

/** Loads the backend, the model (default: the bundled U-Net) and its class names. */
export async function openExplainer(opts: ModelOptions): Promise<{ explainer: Explainer; modelPath: string; backend: BackendName }> {
  const backend = await setupBackend(oneOf(opts.backend ?? 'wasm', '--backend', BACKENDS));
  const modelPath = opts.model ?? inPackage(DEFAULT_MODEL);
  const inputRange = opts.inputRange ? parseRange(opts.inputRange) : undefined;
  const classNames = opts.labels ? await readLabelsFile(opts.labels) : undefined;
  // openModel chooses the engine: a model.json → TF.js, an .onnx file → ONNX Runtime with a compiled gradient graph.
  const explainer = await loadExplainer(modelPath, { classNames, inputRange, outputNode: opts.output, outputName: opts.output });
  for (const note of explainer.adapter.notes ?? []) process.stderr.write(`seg-grad-cam: note: ${note}\n`);
  return { explainer, modelPath, backend };
}

/** The --limit-input-pixels option of commands that read an image. */
export const LIMIT_INPUT_PIXELS: [string, string, string] = [
  '--limit-input-pixels <n>',
  `refuse images of more pixels than this, before decoding (0 = no limit)`,
  String(DEFAULT_PIXEL_LIMIT),
];

export async function openImage(
  path: string | undefined,
  limitInputPixels = String(DEFAULT_PIXEL_LIMIT),
): Promise<{ image: RgbaImage; imagePath: string }> {
  const limit = parseInteger(limitInputPixels, '--limit-input-pixels', 0);
  const imagePath = path ?? inPackage(DEFAULT_IMAGE);
  return { image: await readImageFile(imagePath, { limitInputPixels: limit }), imagePath };
}
