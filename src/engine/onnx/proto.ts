/**
 * The ONNX protobuf format, read and written with protobufjs from a schema kept here (the
 * messages and field numbers of onnx/onnx.proto3, IR version ≤ 10). No code generation and no
 * Node-only module: this file runs in the browser too.
 *
 * Messages are handled as plain objects (`toObject` with int64 as JS numbers, bytes as
 * Uint8Array). int64 values beyond 2^53 (Slice's INT64_MAX "to the end") round to ±2^63,
 * which protobufjs clamps back to INT64_MAX / INT64_MIN when writing, so they survive.
 */
import protobuf from 'protobufjs';
import { SegGradCamError } from '../../errors.js';

export interface StringStringEntry {
  key?: string;
  value?: string;
}

export interface TensorProto {
  dims?: number[];
  dataType?: number;
  segment?: { begin?: number; end?: number };
  floatData?: number[];
  int32Data?: number[];
  stringData?: Uint8Array[];
  int64Data?: number[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntry[];
  dataLocation?: number;
  doubleData?: number[];
  uint64Data?: number[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: number[];
}

export interface AttributeProto {
  name: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparseTensors?: SparseTensorProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute: AttributeProto[];
  docString?: string;
}

export interface TensorShapeDim {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}

export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim: TensorShapeDim[] } };
  sequenceType?: { elemType?: TypeProto };
  mapType?: { keyType?: number; valueType?: TypeProto };
  optionalType?: { elemType?: TypeProto };
  sparseTensorType?: { elemType?: number; shape?: { dim: TensorShapeDim[] } };
  denotation?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
  docString?: string;
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer?: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation?: Array<{ tensorName?: string; quantParameterTensorNames?: StringStringEntry[] }>;
}

export interface OperatorSetId {
  domain?: string;
  version?: number;
}

export interface FunctionProto {
  name?: string;
  input?: string[];
  output?: string[];
  attribute?: string[];
  attributeProto?: AttributeProto[];
  node?: NodeProto[];
  docString?: string;
  opsetImport?: OperatorSetId[];
  domain?: string;
  overload?: string;
  valueInfo?: ValueInfoProto[];
  metadataProps?: StringStringEntry[];
}

export interface ModelProto {
  irVersion?: number;
  opsetImport: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  metadataProps?: StringStringEntry[];
  trainingInfo?: unknown[];
  functions?: FunctionProto[];
}

/** TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

/** AttributeProto.AttributeType values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
} as const;

type Field = { type: string; id: number; rule?: 'repeated' };
const f = (type: string, id: number): Field => ({ type, id });
const r = (type: string, id: number): Field => ({ type, id, rule: 'repeated' });

const entry = { fields: { key: f('string', 1), value: f('string', 2) } };
const shape = {
  fields: { dim: r('Dimension', 1) },
  nested: {
    Dimension: {
      oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
      fields: { dimValue: f('int64', 1), dimParam: f('string', 2), denotation: f('string', 3) },
    },
  },
};

const schema = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: entry,
        AttributeProto: {
          fields: {
            name: f('string', 1),
            refAttrName: f('string', 21),
            docString: f('string', 13),
            type: f('int32', 20),
            f: f('float', 2),
            i: f('int64', 3),
            s: f('bytes', 4),
            t: f('TensorProto', 5),
            g: f('GraphProto', 6),
            sparseTensor: f('SparseTensorProto', 22),
            tp: f('TypeProto', 14),
            floats: r('float', 7),
            ints: r('int64', 8),
            strings: r('bytes', 9),
            tensors: r('TensorProto', 10),
            graphs: r('GraphProto', 11),
            sparseTensors: r('SparseTensorProto', 23),
            typeProtos: r('TypeProto', 15),
          },
        },
        ValueInfoProto: {
          fields: {
            name: f('string', 1),
            type: f('TypeProto', 2),
            docString: f('string', 3),
            metadataProps: r('StringStringEntryProto', 4),
          },
        },
        NodeProto: {
          fields: {
            input: r('string', 1),
            output: r('string', 2),
            name: f('string', 3),
            opType: f('string', 4),
            domain: f('string', 7),
            overload: f('string', 8),
            attribute: r('AttributeProto', 5),
            docString: f('string', 6),
            metadataProps: r('StringStringEntryProto', 9),
          },
        },
        TrainingInfoProto: {
          fields: {
            initialization: f('GraphProto', 1),
            algorithm: f('GraphProto', 2),
            initializationBinding: r('StringStringEntryProto', 3),
            updateBinding: r('StringStringEntryProto', 4),
          },
        },
        ModelProto: {
          fields: {
            irVersion: f('int64', 1),
            opsetImport: r('OperatorSetIdProto', 8),
            producerName: f('string', 2),
            producerVersion: f('string', 3),
            domain: f('string', 4),
            modelVersion: f('int64', 5),
            docString: f('string', 6),
            graph: f('GraphProto', 7),
            metadataProps: r('StringStringEntryProto', 14),
            trainingInfo: r('TrainingInfoProto', 20),
            functions: r('FunctionProto', 25),
          },
        },
        TensorAnnotation: { fields: { tensorName: f('string', 1), quantParameterTensorNames: r('StringStringEntryProto', 2) } },
        GraphProto: {
          fields: {
            node: r('NodeProto', 1),
            name: f('string', 2),
            initializer: r('TensorProto', 5),
            sparseInitializer: r('SparseTensorProto', 15),
            docString: f('string', 10),
            input: r('ValueInfoProto', 11),
            output: r('ValueInfoProto', 12),
            valueInfo: r('ValueInfoProto', 13),
            quantizationAnnotation: r('TensorAnnotation', 14),
            metadataProps: r('StringStringEntryProto', 16),
          },
        },
        TensorProto: {
          fields: {
            dims: r('int64', 1),
            dataType: f('int32', 2),
            segment: f('Segment', 3),
            floatData: r('float', 4),
            int32Data: r('int32', 5),
            stringData: r('bytes', 6),
            int64Data: r('int64', 7),
            name: f('string', 8),
            docString: f('string', 12),
            rawData: f('bytes', 9),
            externalData: r('StringStringEntryProto', 13),
            dataLocation: f('int32', 14),
            doubleData: r('double', 10),
            uint64Data: r('uint64', 11),
            metadataProps: r('StringStringEntryProto', 16),
          },
          nested: { Segment: { fields: { begin: f('int64', 1), end: f('int64', 2) } } },
        },
        SparseTensorProto: { fields: { values: f('TensorProto', 1), indices: f('TensorProto', 2), dims: r('int64', 3) } },
        TensorShapeProto: shape,
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType'] } },
          fields: {
            tensorType: f('Tensor', 1),
            sequenceType: f('Sequence', 4),
            mapType: f('Map', 5),
            optionalType: f('Optional', 9),
            sparseTensorType: f('SparseTensor', 8),
            denotation: f('string', 6),
          },
          nested: {
            Tensor: { fields: { elemType: f('int32', 1), shape: f('TensorShapeProto', 2) } },
            Sequence: { fields: { elemType: f('TypeProto', 1) } },
            Map: { fields: { keyType: f('int32', 1), valueType: f('TypeProto', 2) } },
            Optional: { fields: { elemType: f('TypeProto', 1) } },
            SparseTensor: { fields: { elemType: f('int32', 1), shape: f('TensorShapeProto', 2) } },
          },
        },
        OperatorSetIdProto: { fields: { domain: f('string', 1), version: f('int64', 2) } },
        FunctionProto: {
          fields: {
            name: f('string', 1),
            input: r('string', 4),
            output: r('string', 5),
            attribute: r('string', 6),
            attributeProto: r('AttributeProto', 11),
            node: r('NodeProto', 7),
            docString: f('string', 8),
            opsetImport: r('OperatorSetIdProto', 9),
            domain: f('string', 10),
            overload: f('string', 13),
            valueInfo: r('ValueInfoProto', 12),
            metadataProps: r('StringStringEntryProto', 14),
          },
        },
      },
    },
  },
};

/**
 * Field presence as in onnx.proto (proto2): a field written as 0 (e.g. keepdims = 0) is present.
 * Under proto3 rules protobufjs would drop it on decode and the attribute's default would win.
 */
function proto2(ns: { nested?: Record<string, unknown> }) {
  for (const v of Object.values(ns.nested ?? {})) {
    const m = v as { fields?: unknown; nested?: Record<string, unknown>; edition?: string };
    if (m.fields) m.edition = 'proto2';
    if (m.nested) proto2(m);
  }
}

let modelType: protobuf.Type | null = null;
function modelProtoType(): protobuf.Type {
  if (!modelType) {
    proto2(schema.nested.onnx);
    modelType = protobuf.Root.fromJSON(schema).lookupType('onnx.ModelProto');
  }
  return modelType;
}

/** Parses a .onnx file's bytes. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let message: protobuf.Message;
  try {
    message = modelProtoType().decode(bytes);
  } catch (err) {
    throw new SegGradCamError(`not an ONNX model: ${(err as Error).message}`, 'model');
  }
  const model = modelProtoType().toObject(message, {
    longs: Number,
    enums: Number,
    bytes: Uint8Array,
    defaults: false,
    arrays: true,
  }) as ModelProto;
  if (!model.graph || !Array.isArray(model.graph.node)) throw new SegGradCamError('not an ONNX model: no graph', 'model');
  return model;
}

/** Serialises a model to .onnx bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const type = modelProtoType();
  return type.encode(type.fromObject(model as unknown as Record<string, unknown>)).finish();
}

/** The version of the default (ai.onnx) operator set the model imports. */
export function defaultOpset(model: ModelProto): number {
  const e = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return e?.version ?? 1;
}
