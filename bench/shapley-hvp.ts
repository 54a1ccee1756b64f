/**
 * Measurement behind docs/decisions.md (methods-a): ShapleyCAM's H·A on a softmax over a linear head (6x6x4 → 3
 * classes, S = Σ_M p_c), exact nested differentiation vs central differences (g((1+h)A) − g((1−h)A))/2h in float32,
 * both against the float64 closed form H·A = W H_z (z − b) per pixel. Prints the max error relative to max |H·A|.
 *
 *   node --import tsx bench/shapley-hvp.ts
 */
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/backend/index.js';
import { LayersModelAdapter } from '../src/engine/tfjs-layers/adapter.js';
import { LayersGraph } from '../src/engine/tfjs-layers/graph.js';
import { objectiveScore } from '../src/engine/tfjs/objective.js';
import { regionObjective } from '../src/region/objective.js';
import { inputOf, linearHead } from '../test/helpers/method-models.js';
import { randomImage } from '../test/helpers/setup.js';

await setupBackend('cpu');
const [size, K, C, c] = [6, 4, 3, 2];
const model = linearHead(size, K, C, 3);
const adapter = new LayersModelAdapter(model);
const x = inputOf(randomImage(size, size, 8));
const pass = await adapter.forward(x);
const mask = new Uint8Array(size * size).fill(1);
const objective = regionObjective(adapter.output, c, mask, 'probability');
const A = pass.activation('feat') as tf.Tensor4D;
const a = A.dataSync();
const [kernel, bias] = model.getLayer('logits').getWeights();
const W = kernel.dataSync();
const b = bias.dataSync();
// float64 reference.
const ref = new Float64Array(a.length);
for (let p = 0; p < size * size; p++) {
  const z = Array.from(
    { length: C },
    (_, j) => b[j] + Array.from({ length: K }, (_, k) => W[k * C + j] * a[p * K + k]).reduce((s, v) => s + v, 0),
  );
  const e = z.map((v) => Math.exp(v - Math.max(...z)));
  const q = e.map((v) => v / e.reduce((s, u) => s + u, 0));
  const d = (i: number, j: number) => (i === j ? 1 : 0);
  const hz = (j: number, l: number) => q[c] * ((d(c, j) - q[j]) * (d(c, l) - q[l]) - q[j] * (d(j, l) - q[l]));
  for (let k = 0; k < K; k++) {
    let h = 0;
    for (let j = 0; j < C; j++) for (let l = 0; l < C; l++) h += W[k * C + j] * hz(j, l) * (z[l] - b[l]);
    ref[p * K + k] = h;
  }
}
const scale = Math.max(...Array.from(ref, Math.abs));
const err = (v: ArrayLike<number>) => Math.max(...Array.from(ref, (r, i) => Math.abs(r - v[i]))) / scale;
const hp = await (pass.hessianActivationProduct as NonNullable<typeof pass.hessianActivationProduct>)('feat', objective);
process.stdout.write(`exact (nested tf.grad, float32): max error / max|H·A| = ${err(hp.hessianProduct.dataSync()).toExponential(2)}\n`);
const graph = new LayersGraph(model);
const id = graph.layerOutput.get('feat') as number;
const down = graph.downstreamOf(id);
const g = tf.grad((t: tf.Tensor) =>
  objectiveScore(graph.run(new Map([[id, t]]), down, true, true).get(graph.outputId) as tf.Tensor, objective, adapter.output),
);
for (const h of [1e-1, 1e-2, 1e-3, 1e-4]) {
  const fd = tf.tidy(() => tf.div(tf.sub(g(tf.mul(A, 1 + h)), g(tf.mul(A, 1 - h))), 2 * h).dataSync());
  process.stdout.write(`central difference, step h = ${h} (relative to A): ${err(fd).toExponential(2)}\n`);
}
tf.dispose([hp.activations, hp.gradients, hp.hessianProduct, x]);
pass.dispose();
