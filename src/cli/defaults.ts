import { fileURLToPath } from 'node:url';

/** The bundled U-Net trained on the biased TextureMNIST-like set, and a sample tile for it. */
export const DEFAULT_MODEL = 'models/unet-texture-mnist-biased/model.json';
export const DEFAULT_IMAGE = 'fixtures/tiles/sample.png';

/** The package root, from src/cli (tsx) or dist/cli (compiled) alike. */
const packageRoot = new URL('../../', import.meta.url);

export const inPackage = (relative: string): string => fileURLToPath(new URL(relative, packageRoot));
