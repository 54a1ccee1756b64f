/**
 * A small static server for the built explorer (web/dist) on 127.0.0.1: `npm start` runs it
 * after the build, and the end-to-end tests start it in-process. No dependencies.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Cross-origin isolation: with these the page gets SharedArrayBuffer, so onnxruntime-web can run
 * its wasm on several threads. Everything here is same-origin; a model fetched from another
 * origin by URL still loads when that server allows CORS.
 */
export const ISOLATION_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } as const;

export interface ServeOptions {
  /** The folder to serve (default web/dist). */
  root?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** More folders under URL prefixes, e.g. { '/extra/': '/tmp/models' } (tests use it). */
  mounts?: Record<string, string>;
}

export async function serve(options: ServeOptions = {}): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const root = resolve(options.root ?? fileURLToPath(new URL('./dist/', import.meta.url)));
  const mounts = Object.entries(options.mounts ?? {}).map(([prefix, dir]) => [prefix, resolve(dir)] as const);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      let base = root;
      let rel = path;
      for (const [prefix, dir] of mounts) {
        if (path.startsWith(prefix)) {
          base = dir;
          rel = path.slice(prefix.length - 1);
          break;
        }
      }
      let file = normalize(join(base, rel));
      if (file !== base && !file.startsWith(base + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      let info = await stat(file).catch(() => null);
      if (info?.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file).catch(() => null);
      }
      if (!info?.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': 'no-cache',
        ...ISOLATION_HEADERS,
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;
  return {
    server,
    url: `http://${host}:${port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

// `node --import tsx web/serve.ts [port]`: serve until stopped.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 5173);
  serve({ port }).then(
    ({ url }) => {
      process.stdout.write(`Seg-Grad-CAM explorer: ${url}\n(Ctrl-C to stop)\n`);
    },
    (err: Error) => {
      process.stderr.write(`cannot serve the explorer: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
