/** The public API of rendering: colour maps, resizing, overlays, text and figures. */
export { COLORMAPS, colormap, colormapLut, lutIndex, type ColormapName, type Rgb } from './colormap.js';
export { resizeImageBilinear, resizeImageNearest, resizeLabelsNearest, resizeMapBilinear } from './resize.js';
export { BACKGROUND_COLOR, classColor, defaultPalette, type Palette } from './palette.js';
export {
  contourMask,
  drawContour,
  drawMarker,
  heatmapImage,
  labelImage,
  overlayHeatmap,
  type ContourOptions,
  type MarkerOptions,
  type OverlayOptions,
} from './overlay.js';
export { drawText, fitText, measureText, type TextOptions } from './text.js';
export { classLegendEntries, renderFigure, type FigureOptions, type Legend, type LegendEntry, type Panel } from './figure.js';
