/** The one store of the page (model, image, prediction, region, answer, grid, pins) and what is read from it. */
import type { RgbaImage } from '../../../src/image.js';
import type { Region } from '../../../src/region/region.js';
import { type ColormapName, type Rgb, defaultPalette } from '../../../src/render/index.js';
import type { Catalog } from '../../bundled.js';
import type { Labels } from '../../../src/io/labels.js';
import type { BackendReport, ExplanationMsg, LayerRow, ModelInfo, ModelSource, PredictionInfo } from '../protocol.js';
import type { Pinned } from '../ui/compare.js';
import { el } from './elements.js';

export type Tool = 'pixel' | 'box' | 'brush' | 'object' | 'class';

export interface ModelEntry {
  /** What goes in the URL: a catalog id or `url:…`; null for local files (not shareable). */
  key: string | null;
  name: string;
  source: ModelSource;
  labels?: Labels;
}

export interface ImageEntry {
  key: string | null;
  name: string;
}

/** An image to open: how to get its pixels, and what to call it. */
export interface ImageSource {
  load: () => Promise<RgbaImage>;
  entry: ImageEntry;
}

/** An answer on the page: the worker's explanation and the region that was asked. */
export type Answer = ExplanationMsg & { region: Region };

/** A cell of the layer grid, with its answer once the worker sent it. */
export interface GridCell {
  layer: LayerRow;
  explanation: Answer;
  element: HTMLElement;
  canvas: HTMLCanvasElement;
}

export const state = {
  catalog: { models: [], samples: [] } as Catalog,
  backend: null as BackendReport | null,
  methods: ['seg-grad-cam'] as string[],
  /** The methods that explain the model input (the layer does not matter to them). */
  inputMethods: [] as string[],
  /** The methods with a negative map (the others disable the negative checkbox). */
  negativeMethods: [] as string[],
  /** The methods whose map does not depend on the class (they disable the contrast list). */
  classFreeMethods: [] as string[],
  /** The open model, with the labels the page uses for it. */
  model: null as ModelEntry | null,
  info: null as ModelInfo | null,
  image: null as RgbaImage | null,
  imageEntry: null as ImageEntry | null,
  prediction: null as PredictionInfo | null,
  /** The region drawn: the shown answer's, or one being asked or dragged. */
  region: null as Region | null,
  /** null = the prediction at the region (the default). */
  classChoice: null as number | null,
  explanation: null as Answer | null,
  grid: [] as GridCell[],
  /** The question the grid's cells answer (all but the layer; see questionKey), null with no grid. */
  gridQuestion: null as string | null,
  pinA: null as Pinned | null,
  pinB: null as Pinned | null,
  /** Brush strokes being painted (image resolution). */
  brush: null as Uint8Array | null,
};

export const colormap = (): ColormapName => el.colormapSelect.value as ColormapName;
export const opacity = (): number => Number(el.opacity.value);
/** The layer explained ('' before a model is open). */
export const layer = (): string => el.layerSelect.value;
/** What the model and image are called in the test hook and the JSON export. */
export const modelName = (): string | null => state.model?.key ?? state.model?.name ?? null;
export const imageName = (): string | null => state.imageEntry?.key ?? state.imageEntry?.name ?? null;
/** What runs the open model: onnxruntime-web for an ONNX model, else the TF.js backend. */
export const engine = (): string => state.info?.engine ?? state.backend?.backend ?? '?';

/** Selects a layer, when the model has it. */
export function selectLayer(name: string | undefined): void {
  if (name && state.info?.layers.some((l) => l.name === name)) el.layerSelect.value = name;
}

export function className(c: number): string {
  return state.model?.labels?.names[c] ?? state.info?.classNames?.[c] ?? `class ${c}`;
}

export function palette(): Rgb[] {
  const base = [...defaultPalette()];
  state.model?.labels?.colors.forEach((c, i) => {
    if (c) base[i] = c;
  });
  return base;
}

/** True when the method chosen explains the model input whatever the layer. */
export const explainsInput = (method: string): boolean => state.inputMethods.includes(method);

/** A message with every "class N" followed by the class's name, as the user sees it in the legend. */
export function withClassNames(message: string): string {
  return message.replace(/\bclass (\d+)\b(?! ·| \()/g, (all, n: string) => {
    const c = Number(n);
    const name = state.info && c < state.info.classCount ? className(c) : null;
    return name && name !== all ? `class ${c} (${name})` : all;
  });
}
