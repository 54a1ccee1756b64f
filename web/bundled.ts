/**
 * The bundled models and sample images the explorer offers, read from the repository at
 * build time (the Vite plugin copies them into web/dist and writes catalog.json). A model is
 * listed only when its model.json exists, so the U-Net appears once it has been trained.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface CatalogModel {
  id: string;
  name: string;
  /** URL of model.json, relative to the page. */
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
  json: string;
  labels?: string;
  samples: string;
  description: string;
}

const SPECS: Spec[] = [
  {
    id: 'unet-biased',
    name: 'U-Net · TextureMNIST (biased)',
    json: 'models/unet-texture-mnist-biased/model.json',
    samples: 'fixtures/tiles',
    description: 'the project\'s U-Net; digit 3 always sat on the brick background in training',
  },
  {
    id: 'unet-unbiased',
    name: 'U-Net · TextureMNIST (unbiased)',
    json: 'models/unet-texture-mnist-unbiased/model.json',
    samples: 'fixtures/tiles',
    description: 'the same U-Net trained without the planted bias',
  },
  {
    id: 'selfie',
    name: 'MediaPipe selfie segmentation',
    json: 'models/selfie/selfie.json',
    labels: 'models/selfie/labels.txt',
    samples: 'fixtures/images',
    description: 'a third-party graph model: person vs background, 256x256',
  },
];

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
    const jsonPath = join(repo, spec.json);
    if (!existsSync(jsonPath)) continue;
    let manifest: Array<{ paths: string[] }>;
    try {
      manifest = (JSON.parse(readFileSync(jsonPath, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> }).weightsManifest;
    } catch {
      continue;
    }
    const weightFiles = manifest.flatMap((g) => g.paths).map((p) => join(dirname(jsonPath), p));
    if (!weightFiles.every((f) => existsSync(f))) continue;
    const base = posix.dirname(spec.json);
    files.set(spec.json, jsonPath);
    for (const f of weightFiles) files.set(posix.join(base, posix.basename(f)), f);
    let labels: string | undefined;
    if (spec.labels && existsSync(join(repo, spec.labels))) {
      files.set(spec.labels, join(repo, spec.labels));
      labels = spec.labels;
    }
    models.push({ id: spec.id, name: spec.name, url: spec.json, labels, samples: sampleUrls(spec.samples), description: spec.description });
  }
  return { files, catalog: { models, samples: [...samples].map(([url, name]) => ({ url, name })) } };
}
