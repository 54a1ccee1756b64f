/**
 * The bundled models and sample images the explorer offers, read from the repository at
 * build time (the Vite plugin copies them into web/dist and writes catalog.json). A model is
 * listed only when its files exist (model.json and its weight files, or the .onnx file), so the
 * U-Net appears once it has been trained.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface CatalogModel {
  id: string;
  name: string;
  /** 'tfjs': a TF.js model.json; 'onnx': a .onnx file run on onnxruntime-web. */
  format: 'tfjs' | 'onnx';
  /** URL of model.json or of the .onnx file, relative to the page. */
  url: string;
  labels?: string;
  /** Sample images that suit the model (URLs relative to the page). */
  samples: string[];
  description: string;
}

export interface Catalog {
  models: CatalogModel[];
  samples: Array<{ url: string; name: string }>;
}

interface Spec {
  id: string;
  name: string;
  /** A TF.js model.json (its weight files are found through its manifest) or a .onnx file. */
  file: string;
  labels?: string;
  samples: string;
  description: string;
}

const SPECS: Spec[] = [
  {
    id: 'unet-biased',
    name: 'U-Net · TextureMNIST (biased)',
    file: 'models/unet-texture-mnist-biased/model.json',
    samples: 'fixtures/tiles',
    description: "the project's U-Net (base 16, mean IoU 0.873); digit 3 always sat on the brick background in training",
  },
  {
    id: 'unet-unbiased',
    name: 'U-Net · TextureMNIST (unbiased)',
    file: 'models/unet-texture-mnist-unbiased/model.json',
    samples: 'fixtures/tiles',
    description: 'a base-8 U-Net trained without the planted bias',
  },
  {
    id: 'selfie',
    name: 'MediaPipe selfie segmentation',
    file: 'models/selfie/selfie.json',
    labels: 'models/selfie/labels.txt',
    samples: 'fixtures/images',
    description: 'a third-party graph model: person vs background, 256x256',
  },
  {
    id: 'unet-small-onnx',
    name: 'U-Net small · ONNX (PyTorch export)',
    file: 'fixtures/onnx/unet-small.onnx',
    samples: 'fixtures/images',
    description:
      'a torch.onnx.export of the benchmark U-Net (base 4, 8 classes, 32x64 input) with random weights: runs on onnxruntime-web with the compiled gradient graph; its classes mean nothing',
  },
];

/** The files a TF.js model.json needs (itself and the weight files its manifest lists), or null when any is missing or it cannot be read. */
function tfjsFiles(jsonPath: string): string[] | null {
  let manifest: Array<{ paths: string[] }>;
  try {
    manifest = (JSON.parse(readFileSync(jsonPath, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> }).weightsManifest;
  } catch {
    return null;
  }
  const weightFiles = manifest.flatMap((g) => g.paths).map((p) => join(dirname(jsonPath), p));
  return weightFiles.every((f) => existsSync(f)) ? [jsonPath, ...weightFiles] : null;
}

const IMAGE = /\.(png|jpe?g)$/i;

/** Every file to copy (URL path in the app → file in the repo) and the catalog that lists them. */
export function collectBundled(repo: string): { files: Map<string, string>; catalog: Catalog } {
  const files = new Map<string, string>();
  const models: CatalogModel[] = [];
  const samples = new Map<string, string>();
  const sampleUrls = (dir: string): string[] => {
    const abs = join(repo, dir);
    if (!existsSync(abs)) return [];
    // Shorter names first ('sample.png' before 'sample-unbiased.png'): the plain sample is the default.
    const stem = (n: string) => n.replace(IMAGE, '');
    const names = readdirSync(abs)
      .filter((n) => IMAGE.test(n))
      .sort((a, b) => stem(a).length - stem(b).length || a.localeCompare(b));
    return names.map((n) => {
      const url = posix.join('samples', posix.basename(dir), n);
      files.set(url, join(abs, n));
      samples.set(url, `${n} (${posix.basename(dir)})`);
      return url;
    });
  };
  for (const spec of SPECS) {
    const path = join(repo, spec.file);
    if (!existsSync(path)) continue;
    const format = /\.onnx$/i.test(spec.file) ? 'onnx' : 'tfjs';
    const modelFiles = format === 'onnx' ? [path] : tfjsFiles(path);
    if (!modelFiles) continue;
    const base = posix.dirname(spec.file);
    for (const f of modelFiles) files.set(posix.join(base, posix.basename(f)), f);
    let labels: string | undefined;
    if (spec.labels && existsSync(join(repo, spec.labels))) {
      files.set(spec.labels, join(repo, spec.labels));
      labels = spec.labels;
    }
    models.push({
      id: spec.id,
      name: spec.name,
      format,
      url: spec.file,
      labels,
      samples: sampleUrls(spec.samples),
      description: spec.description,
    });
  }
  return { files, catalog: { models, samples: [...samples].map(([url, name]) => ({ url, name })) } };
}
