import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { collectBundled } from './bundled.js';
import { ORT_WASM_DIR } from './src/protocol.js';
import { ISOLATION_HEADERS } from './serve.js';
import { volumeFiles } from './volume-assets.js';

const webDir = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

/**
 * onnxruntime-web's runtime for the wasm execution provider (the Emscripten module and its
 * binary), served from our build's ORT_WASM_DIR: the worker sets `env.wasm.wasmPaths` there, so
 * nothing is fetched from a CDN. Only the plain build: no JSEP/WebGPU, JSPI or asyncify variants.
 */
function ortFiles(): Map<string, string> {
  const require = createRequire(import.meta.url);
  const names = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
  return new Map(names.map((n) => [posix.join(ORT_WASM_DIR, n), require.resolve(`onnxruntime-web/${n}`)]));
}

/** Every file the build copies as is (URL path in the app → file on disk): bundled models and samples, onnxruntime-web's runtime. */
function copied(): ReturnType<typeof collectBundled> {
  const { files, catalog } = collectBundled(repo);
  for (const [url, file] of ortFiles()) files.set(url, file);
  for (const [url, file] of volumeFiles(repo)) files.set(url, file);
  return { files, catalog };
}

/** Copies the bundled models, sample images and ORT runtime into the build and writes catalog.json (served from the repo in dev). */
function bundledAssets(): Plugin {
  return {
    name: 'seg-grad-cam-bundled',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const { files, catalog } = copied();
        const path = decodeURIComponent((req.url ?? '').split('?')[0]).replace(/^\//, '');
        if (path === 'catalog.json') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(catalog));
          return;
        }
        const file = files.get(path);
        if (!file) return next();
        if (file.endsWith('.mjs')) res.setHeader('content-type', 'text/javascript');
        if (file.endsWith('.wasm')) res.setHeader('content-type', 'application/wasm');
        res.end(readFileSync(file));
      });
    },
    generateBundle() {
      const { files, catalog } = copied();
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
  // onnxruntime-web's entry without the embedded Emscripten module: it loads the runtime from
  // env.wasm.wasmPaths (our ort/ folder) instead of letting the bundler emit a second copy.
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: false,
    // The build is quick; rolldown's "slow plugin" note (the HTML and worker transforms) is noise here.
    rolldownOptions: {
      checks: { bundlerTimings: false },
      // Two pages: the 2-D explorer and the volume view (web/volume.html).
      input: {
        main: fileURLToPath(new URL('./index.html', import.meta.url)),
        volume: fileURLToPath(new URL('./volume.html', import.meta.url)),
      },
    },
  },
  server: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
  preview: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
});
