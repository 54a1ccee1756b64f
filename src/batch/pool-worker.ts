/** A batch worker thread: one Explainer, items one at a time (see pool.ts). */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { SegGradCamError } from '../errors.js';
import type { Explainer } from '../explain.js';
import { processItem } from './item.js';
import { checkPlan, openModel } from './model.js';
import type { FromPoolWorker, ToPoolWorker } from './pool.js';

const port = parentPort;
if (!port) throw new Error('pool-worker.ts runs in a worker thread');
tf.enableProdMode();
let explainer: Explainer | undefined;
let config: Extract<ToPoolWorker, { type: 'init' }> | undefined;

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
    try {
      const record = await processItem(explainer, m.item, config.plan, m.options ?? config.options);
      const { numTensors, numBytes } = tf.memory();
      post({ type: 'done', id: m.id, record, memory: { numTensors, numBytes } });
    } catch (e) {
      post({
        type: 'failed',
        id: m.id,
        message: (e as Error)?.message ?? String(e),
        code: e instanceof SegGradCamError ? e.code : undefined,
      });
    }
  })();
});
