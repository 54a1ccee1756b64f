/**
 * A batch worker thread: one Explainer; items are computed one at a time in arrival order, and an
 * item's files are written (item-files.ts: their flushes awaited in libuv's pool) while the next
 * item is computed. Its 'done' goes out when the files are in place (see pool.ts).
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { Explainer } from '../explain.js';
import { writeItemFiles } from './item-files.js';
import { computeItem } from './item.js';
import { checkPlan, openModel } from './model.js';
import type { FromPoolWorker, ToPoolWorker } from './pool.js';

const port = parentPort;
if (!port) throw new Error('pool-worker.ts runs in a worker thread');
tf.enableProdMode();
let explainer: Explainer | undefined;
let config: Extract<ToPoolWorker, { type: 'init' }> | undefined;
/** The computation of the items received so far, one after another. */
let computing: Promise<void> = Promise.resolve();

const post = (m: FromPoolWorker) => port.postMessage(m);

port.on('message', (m: ToPoolWorker) => {
  void (async () => {
    if (m.type === 'init') {
      try {
        config = m;
        explainer = await openModel(m.model);
        checkPlan(explainer, m.plan);
        post({ type: 'ready' });
      } catch (e) {
        post({
          type: 'error',
          message: (e as Error)?.message ?? String(e),
          code: e instanceof SegGradCamError ? e.code : undefined,
        });
      }
      return;
    }
    if (!explainer || !config) return;
    const { plan, options } = config;
    const ex = explainer;
    const failed = (e: unknown) =>
      post({
        type: 'failed',
        id: m.id,
        message: (e as Error)?.message ?? String(e),
        code: e instanceof SegGradCamError ? e.code : undefined,
      });
    computing = computing.then(async () => {
      let staged: Awaited<ReturnType<typeof computeItem>>;
      try {
        staged = await computeItem(ex, m.item, plan, m.options ?? options);
      } catch (e) {
        failed(e);
        return;
      }
      const { numTensors, numBytes } = tf.memory();
      // Not awaited: the next item is computed while these files are flushed.
      writeItemFiles(staged.outputs).then(
        () => post({ type: 'done', id: m.id, record: staged.record, memory: { numTensors, numBytes } }),
        failed,
      );
    });
  })();
});
