/**
 * A thread of bench/batch-profile.ts's compute ceiling: the batch path's per-item work without
 * its plumbing — per item the image and mask read and decoded, the forward pass, every request
 * explained, the overlays PNG-encoded and the CAMs .npy-encoded in memory (computeItem), the pass
 * released; no file written or flushed, no message per item. `pure`: a scalar arithmetic
 * loop instead (no model, no memory traffic), the kind of loop the first 1.66x came from.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { computeItem } from '../src/batch/item.js';
import type { BatchItem } from '../src/batch/manifest.js';
import { openModel, type ModelSpec } from '../src/batch/model.js';
import type { BatchPlan } from '../src/batch/plan.js';
import type { Explainer } from '../src/explain.js';
import { threadId } from './thread-cpu.js';

export type ToCeiling =
  | { type: 'init'; model: ModelSpec; plan: BatchPlan; items: BatchItem[]; warmup: number }
  | { type: 'go'; count: number; kind: 'explain' | 'pure' };
export type FromCeiling = { type: 'ready'; tid: number } | { type: 'done'; items: number; checksum: number };

const port = parentPort;
if (!port) throw new Error('a worker thread');
tf.enableProdMode();
let explainer: Explainer | undefined;
let init: Extract<ToCeiling, { type: 'init' }> | undefined;

/** One item's compute (its image and mask read from the page cache and decoded, as in a run). */
async function one(k: number): Promise<number> {
  const { items, plan } = init as Extract<ToCeiling, { type: 'init' }>;
  const item = items[k % items.length];
  const staged = await computeItem(explainer as Explainer, item, plan, { outDir: '/nonexistent' });

  return staged.outputs.reduce((a, o) => a + o.bytes.length, 0);
}

/** ~ the CPU time of one explained item, in scalar arithmetic. */
function pure(): number {
  let x = 0;
  for (let i = 0; i < 4e6; i++) x = (x * 1.0000001 + i) % 1e9;
  return x;
}

port.on('message', (m: ToCeiling) => {
  void (async () => {
    if (m.type === 'init') {
      init = m;
      explainer = await openModel(m.model);
      for (let k = 0; k < m.warmup; k++) await one(k);
      port.postMessage({ type: 'ready', tid: threadId() } satisfies FromCeiling);
      return;
    }
    let checksum = 0;
    for (let k = 0; k < m.count; k++) checksum += m.kind === 'pure' ? pure() : await one(k);
    port.postMessage({ type: 'done', items: m.count, checksum } satisfies FromCeiling);
  })();
});
