import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { collectBundled } from './bundled.js';

const webDir = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

/** Copies the bundled models and sample images into the build and writes catalog.json (served from the repo in dev). */
function bundledAssets(): Plugin {
  return {
    name: 'seg-grad-cam-bundled',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const { files, catalog } = collectBundled(repo);
        const path = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\//, '');
        if (path === 'catalog.json') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(catalog));
          return;
        }
        const file = files.get(path);
        if (!file) return next();
        res.end(readFileSync(file));
      });
    },
    generateBundle() {
      const { files, catalog } = collectBundled(repo);
      for (const [fileName, file] of files) this.emitFile({ type: 'asset', fileName, source: readFileSync(file) });
      this.emitFile({ type: 'asset', fileName: 'catalog.json', source: JSON.stringify(catalog, null, 2) });
    },
  };
}

export default defineConfig({
  root: webDir,
  base: './',
  plugins: [bundledAssets()],
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: false,
    // The build is quick; rolldown's "slow plugin" note (the HTML and worker transforms) is noise here.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
