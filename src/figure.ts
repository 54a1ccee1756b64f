import type { Explanation } from './explain.js';
import type { RgbaImage } from './image.js';
import {
  classLegendEntries,
  defaultPalette,
  heatmapImage,
  labelImage,
  overlayHeatmap,
  renderFigure,
  resizeLabelsNearest,
  type ColormapName,
  type Panel,
} from './render/index.js';

export interface FigureOptions {
  colormap?: ColormapName;
  opacity?: number;
  /** A pixel to mark (original image coordinates). */
  marker?: [number, number];
  /** 'panels': input · prediction · heatmap · overlay, like the paper's figures; 'overlay': the overlay alone. */
  layout?: 'panels' | 'overlay';
  classNames?: readonly string[];
  background?: 'white' | 'dark';
}

/** The region M at image resolution, for its contour. */
export function regionOnImage(e: Explanation): Uint8Array {
  return resizeLabelsNearest(e.regionMask, e.prediction.width, e.prediction.height, e.width, e.height);
}

/** Renders an explanation as the paper-style four-panel figure, or as one overlay. */
export function explanationFigure(image: RgbaImage, e: Explanation, options: FigureOptions = {}): RgbaImage {
  const colormap = options.colormap ?? 'turbo';
  const overlay = overlayHeatmap(image, e.heatmap, { colormap, opacity: options.opacity ?? 0.5 });
  const contour = regionOnImage(e);
  const className = e.className ?? options.classNames?.[e.classIndex] ?? `class ${e.classIndex}`;
  const px = e.regionMask.reduce((a, b) => a + b, 0);
  const overlayPanel: Panel = {
    image: overlay,
    title: `${className}, |M| = ${px}`,
    contour,
    marker: options.marker,
    legend: { type: 'colorbar', colormap, min: 0, max: 1 },
  };
  if (options.layout === 'overlay') return renderFigure([overlayPanel], { background: options.background });

  const labels = resizeLabelsNearest(e.prediction.labels, e.prediction.width, e.prediction.height, e.width, e.height);
  const palette = defaultPalette();
  const prediction = labelImage(labels, e.width, e.height, palette);
  const heat = heatmapImage(e.heatmap, e.width, e.height, colormap);
  return renderFigure(
    [
      { image, title: 'input', marker: options.marker },
      {
        image: prediction,
        title: 'prediction',
        contour,
        legend: { type: 'classes', entries: classLegendEntries(e.prediction.labels, palette, options.classNames) },
      },
      {
        image: heat,
        title: `${e.method} @ ${e.layer.name}${e.empty ? ' (zero)' : ''}`,
        legend: { type: 'colorbar', colormap, min: 0, max: 1 },
      },
      overlayPanel,
    ],
    { background: options.background },
  );
}
