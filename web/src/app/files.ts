/** Files chosen or dropped: a model (with its labels), a labels file, an image. */
import { fileImage, openImage } from './image.js';
import { applyLabelsFile, openModelAndImage, readLabels } from './model.js';
import type { ModelEntry } from './state.js';

export const isLabels = (f: File) => /\.(txt|labels)$/i.test(f.name) || /labels.*\.json$/i.test(f.name);
export const isImage = (f: File) => /^image\//.test(f.type) || /\.(png|jpe?g|gif|webp|bmp)$/i.test(f.name);

export async function openFiles(files: File[]): Promise<void> {
  const images = files.filter(isImage);
  const modelFiles = files.filter((f) => !isImage(f) && !isLabels(f));
  const labelFiles = files.filter(isLabels);
  const image = images[0] ? fileImage(images[0]) : null;
  if (modelFiles.length > 0) {
    const labels = labelFiles[0] ? await readLabels(labelFiles[0]) : undefined;
    if (labels === null) return;
    const named = modelFiles.find((f) => /\.(json|onnx)$/i.test(f.name));
    const entry: ModelEntry = { key: null, name: named?.name ?? 'your model', source: { kind: 'files', files: modelFiles }, labels };
    await openModelAndImage(entry, image);
    return;
  }
  if (labelFiles[0]) await applyLabelsFile(labelFiles[0]);
  if (image) await openImage(image);
}
