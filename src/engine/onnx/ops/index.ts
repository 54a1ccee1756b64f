/**
 * The registry of op gradients: one record per ONNX op type ({ inputs, vjp, window }, see
 * ./context.ts), grouped by family in this folder. The gradient builder (../gradient.ts) and the
 * window planner (../window.ts) read nothing else about ops; adding an op is one record here and
 * its fixture (docs/onnx.md).
 */
import type { NodeProto } from '../proto.js';
import { ARITHMETIC_OPS } from './arithmetic.js';
import type { OpGradient } from './context.js';
import { CONV_OPS } from './conv.js';
import { POINTWISE_OPS } from './pointwise.js';
import { POOL_OPS } from './pool.js';
import { RESAMPLE_OPS } from './resample.js';
import { SHAPE_OPS } from './shape.js';
import { ELEMENTWISE_MATH_OPS } from './elementwise-math.js';
import { INDEXING_OPS } from './indexing.js';
import { NORMALIZATION_OPS } from './normalization.js';
import { REDUCE_OPS } from './reduce.js';

export const OPS: Readonly<Record<string, OpGradient>> = {
  ...CONV_OPS,
  ...POINTWISE_OPS,
  ...POOL_OPS,
  ...ARITHMETIC_OPS,
  ...SHAPE_OPS,
  ...RESAMPLE_OPS,
  ...NORMALIZATION_OPS,
  ...ELEMENTWISE_MATH_OPS,
  ...INDEXING_OPS,
  ...REDUCE_OPS,
};

/** The record of a node's op type, if there is one. */
export const opGradient = (node: NodeProto): OpGradient | undefined => (Object.hasOwn(OPS, node.opType) ? OPS[node.opType] : undefined);

/** The ops whose vector-Jacobian products are implemented. */
export const SUPPORTED_OPS = Object.keys(OPS)
  .filter((op) => OPS[op].vjp)
  .sort();

export { VjpContext, type OpGradient } from './context.js';
export { sigmoidVjp, softmaxVjp } from './pointwise.js';
