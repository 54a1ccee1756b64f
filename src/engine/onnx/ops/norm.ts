/**
 * InstanceNormalization, any rank (NCHW or NCDHW): y = scale · x̂ + B with x̂ = (x − μ)/σ, μ and
 * σ² = var + ε taken per (n, c) over every spatial axis. Its input gradient (scale and B are
 * weights, not differentiated):
 *
 *   ∂S/∂x = (1/σ) · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)),   ĝ = scale · ∂S/∂y,
 *
 * the means over the spatial axes. μ and σ are recomputed from x (a saved forward tensor).
 */
import { attrFloat } from '../builder.js';
import type { OpGradient, Vjp, VjpContext } from './context.js';
import { ones } from './context.js';

function reduceMean(c: VjpContext, x: string, axes: number[]): string {
  if (c.opset >= 18) return c.op('ReduceMean', [x, c.i64(axes)], { keepdims: { i: 1 } });
  return c.op('ReduceMean', [x], { axes: { ints: axes }, keepdims: { i: 1 } });
}

const instanceNorm: Vjp = (c, node, [g], wanted) => {
  if (wanted[1] || wanted[2]) throw c.refuse(node, 'gradients through its scale or bias are not supported');
  if (!g) return [];
  const [x, scale] = node.input;
  const xs = c.shape(x);
  const rank = xs.length;
  if (rank < 3) throw c.refuse(node, `an input of rank ${rank} has no spatial axes`);
  const axes = Array.from({ length: rank - 2 }, (_, i) => i + 2);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const mu = reduceMean(c, x, axes);
  const centred = c.op('Sub', [x, mu]);
  const variance = reduceMean(c, c.op('Mul', [centred, centred]), axes);
  const rstd = c.op('Div', [c.f32(1), c.op('Sqrt', [c.op('Add', [variance, c.f32(eps)])])]);
  const xhat = c.op('Mul', [centred, rstd]);
  const s = c.op('Reshape', [scale, c.i64([xs[1], ...ones(rank - 2)])]);
  const gh = c.op('Mul', [g, s]);
  const m1 = reduceMean(c, gh, axes);
  const m2 = reduceMean(c, c.op('Mul', [gh, xhat]), axes);
  const inner = c.op('Sub', [c.op('Sub', [gh, m1]), c.op('Mul', [xhat, m2])]);
  return [c.op('Mul', [inner, rstd])];
};

export const NORM_OPS: Record<string, OpGradient> = {
  // The statistics span the whole map: a windowed backward pass cannot run through it.
  InstanceNormalization: { inputs: [0, 1, 2], vjp: instanceNorm, window: () => 'normalises over the whole map' },
};
