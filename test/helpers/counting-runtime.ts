/**
 * onnxruntime-node whose sessions record each run (the feeds' names and the number of elements
 * returned) and count their creations: how many runs and sessions an engine call costs.
 */
import type { InferenceSession } from 'onnxruntime-common';
import { nodeRuntime } from '../../src/engine/onnx/node.js';
import type { OrtRuntime } from '../../src/engine/onnx/options.js';

export function countingRuntime() {
  const runs: Array<{ feeds: string[]; elements: number }> = [];
  let created = 0;
  const ort: OrtRuntime = {
    name: 'counting',
    Tensor: nodeRuntime.Tensor,
    InferenceSession: {
      async create(model: Uint8Array, options?: InferenceSession.SessionOptions) {
        created++;
        const s = await nodeRuntime.InferenceSession.create(model, options);
        const run = s.run.bind(s) as (feeds: InferenceSession.FeedsType) => Promise<InferenceSession.ReturnType>;
        return Object.assign(Object.create(s) as InferenceSession, {
          run: async (feeds: InferenceSession.FeedsType) => {
            const res = await run(feeds);
            runs.push({ feeds: Object.keys(feeds), elements: Object.values(res).reduce((n, t) => n + t.size, 0) });
            return res;
          },
          release: () => s.release(),
        });
      },
    },
  };
  return { ort, runs, created: () => created };
}
