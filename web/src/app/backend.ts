/** The inference worker and its calls (with status), and the TF.js backend it chose. */
import { type BackendChoice, ORT_WASM_DIR, type Reply, probeText } from '../protocol.js';
import { InferenceWorker } from '../worker-client.js';
import { el } from './elements.js';
import { hook } from './hook.js';
import { fillMethods } from './model.js';
import { state } from './state.js';
import { begin } from './status.js';

export const worker = new InferenceWorker(
  () => new Worker(new URL('../worker.ts', import.meta.url), { type: 'module', name: 'seg-grad-cam' }),
);

export async function call<T extends Reply['type']>(
  label: string,
  request: Parameters<InferenceWorker['call']>[0],
  expected: T,
  hooks: Parameters<InferenceWorker['call']>[1] = {},
): Promise<Extract<Reply, { type: T }> | null> {
  const task = begin(label);
  try {
    const reply = await worker.call(request, {
      ...hooks,
      onProgress: (p) => {
        task.update(p);
        hooks.onProgress?.(p);
      },
    });
    if (reply.type === 'superseded') return null;
    if (reply.type !== expected) throw new Error(`internal: expected ${expected}, got ${reply.type}`);
    return reply as Extract<Reply, { type: T }>;
  } finally {
    task.end();
  }
}

/** Stops the running explanation: the worker drops it at its next pass and answers it 'superseded'. */
export async function cancelWork(): Promise<void> {
  await worker.call({ type: 'cancel' });
}

export const BACKEND_KEY = 'seg-grad-cam.backend';

/** Runs a localStorage access; where the browser allows no storage, nothing is remembered (and the backend is timed again). */
export function withStorage<T>(access: () => T): T | undefined {
  try {
    return access();
  } catch {
    return undefined;
  }
}

export async function initBackend(choice: BackendChoice): Promise<void> {
  const saved = withStorage(() => JSON.parse(localStorage.getItem(BACKEND_KEY) ?? 'null') as { ua: string; backend: string } | null);
  const remembered = saved && saved.ua === navigator.userAgent ? saved.backend : undefined;
  const ortWasmBase = new URL(ORT_WASM_DIR, document.baseURI).href;
  const reply = await call(
    'starting',
    { type: 'init', backend: choice, cachedChoice: choice === 'auto' ? remembered : undefined, ortWasmBase },
    'init',
  );
  if (!reply) return;
  state.backend = reply.report;
  state.methods = reply.methods;
  state.inputMethods = reply.inputMethods;
  state.negativeMethods = reply.negativeMethods;
  state.classFreeMethods = reply.classFreeMethods;
  hook.backend = reply.report;
  if (choice === 'auto' && reply.report.probes.length > 0) {
    withStorage(() => localStorage.setItem(BACKEND_KEY, JSON.stringify({ ua: navigator.userAgent, backend: reply.report.backend })));
  }
  renderBackend();
  fillMethods();
}

export function renderBackend(): void {
  const r = state.backend;
  if (!r) return;
  const probes = r.probes.map((p) => probeText(p, 1));
  const onnx = state.info?.engine ?? null;
  el.backend.innerHTML = '';
  el.backend.append('backend: ');
  const b = document.createElement('b');
  b.textContent = onnx ?? r.backend;
  // An ONNX model runs on ONNX Runtime; the TF.js backend only resizes the image and the heatmap.
  el.backend.append(b, onnx ? ` · ONNX model (TF.js on ${r.backend} for pre- and post-processing)` : ` · ${r.reason}`);
  el.backend.title = probes.length > 0 ? `TF.js backend probe (forward + gradient): ${probes.join('; ')}` : r.reason;
  el.backend.dataset.backend = onnx ?? r.backend;
}
