/**
 * Node-only helper (imports node: modules; never import it from browser code).
 *
 * tfjs-backend-wasm 4.22 finds its .wasm binaries by itself in Node (next to its
 * own script in node_modules), so this is only needed when that lookup breaks,
 * e.g. after bundling the package into another file:
 *
 *   await setupBackend('wasm', { wasmPaths: nodeWasmDir() });
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

/** The directory (ending in a separator) holding tfjs-backend-wasm's .wasm files. */
export function nodeWasmDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(pkg), 'dist') + sep;
}
