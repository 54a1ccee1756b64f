/**
 * ONNX models through ONNX Runtime, with gradients from a graph the project compiles.
 * Browser-safe: pass the runtime module (onnxruntime-web, or onnxruntime-node via ./node.ts).
 */
export { OnnxModelAdapter, OnnxForwardPass, type OnnxAdapterOptions, type OrtRuntime } from './adapter.js';
export { logitsCotangent, scoreOf, type Cotangent } from './cotangent.js';
export {
  buildGradientGraph,
  backwardGraph,
  gradientPath,
  SUPPORTED_OPS,
  COTANGENT,
  ACTIVATION,
  GRADIENT,
  type GradientGraph,
  type GradientGraphOptions,
} from './gradient.js';
export { GraphAnalysis, type ProbedTensor } from './analysis.js';
export {
  decodeModel,
  encodeModel,
  defaultOpset,
  DataType,
  type ModelProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';
export { GraphBuilder, emptyModel, valueInfo } from './builder.js';
export { nchwToNhwc, nhwcToNchw, toNhwcShape } from './layout.js';
export { readTensor, floatTensor, int64Tensor } from './tensor.js';
