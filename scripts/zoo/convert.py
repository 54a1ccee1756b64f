"""ONNX rewrites of an exported float32 model, written with the onnx package alone (Debian has
neither onnxconverter-common nor onnxruntime for Python):

to_float16     weights and Constant nodes in float16, float32 input and output through Cast
               nodes (what onnxconverter-common's convert_float_to_float16(keep_io_types=True)
               produces): Cast(input -> f16) first, Cast(f16 -> f32) before every output, inner
               Cast(to=float) nodes retargeted to float16. Inputs ONNX requires in float32
               (Resize's roi and scales) keep float32 constants.
to_dynamic_int8  ONNX Runtime's quantize_dynamic pattern, per Conv with constant weights:
               DynamicQuantizeLinear(x) -> ConvInteger(x_q, W_q, x_zp, W_zp) -> Cast(float)
               -> Mul(x_scale * W_scale) -> Add(bias); per MatMul with a constant right operand
               the same with MatMulInteger (the bias Add stays as exported); W per tensor, uint8
               asymmetric (weight_type=QUInt8), so every Conv/MatMul weight is int8-sized.
shuffled       the same nodes in a seeded random order (not topological): ONNX Runtime sorts
               on load, onnx.checker refuses it.
"""
import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (op, input index) that must stay float32 whatever the model's element type
FLOAT32_ONLY = {('Resize', 1), ('Resize', 2), ('Upsample', 1)}
# op -> its float data inputs; run in float32 between Casts (onnxconverter-common's block list)
BLOCKED = {'Resize': (0,), 'Upsample': (0,), 'Min': None, 'Max': None}


def _consumers(graph):
    uses = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, i))
    return uses


def to_float16(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    uses = _consumers(g)

    def stays_f32(name):
        u = uses.get(name, [])
        return len(u) > 0 and all(x in FLOAT32_ONLY for x in u)

    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and not stays_f32(init.name):
            arr = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == 'Constant':
            for a in node.attribute:
                if a.name == 'value' and a.t.data_type == TensorProto.FLOAT and not stays_f32(node.output[0]):
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        elif node.op_type == 'ConstantOfShape':
            for a in node.attribute:
                if a.name == 'value' and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        elif node.op_type == 'Cast':
            for a in node.attribute:
                if a.name == 'to' and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16

    rename = {}
    for inp in g.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            rename[inp.name] = inp.name + '_f16'
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    casts_in = [helper.make_node('Cast', [n], [r], name=f'{n}_cast_to_f16', to=TensorProto.FLOAT16) for n, r in rename.items()]
    casts_out = []
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = out.name + '_f16'
        for node in g.node:
            for i, name in enumerate(node.output):
                if name == out.name:
                    node.output[i] = inner
            for i, name in enumerate(node.input):
                if name == out.name:
                    node.input[i] = inner
        casts_out.append(helper.make_node('Cast', [inner], [out.name], name=f'{out.name}_cast_to_f32', to=TensorProto.FLOAT))
    body = []
    for node in g.node:
        if node.op_type not in BLOCKED:
            body.append(node)
            continue
        idx = BLOCKED[node.op_type] or range(len(node.input))
        for i in idx:
            src = node.input[i]
            if not src:
                continue
            cast = f'{node.name}_input{i}_cast_to_f32'
            body.append(helper.make_node('Cast', [src], [cast], name=cast, to=TensorProto.FLOAT))
            node.input[i] = cast
        outs = list(node.output)
        for i, o in enumerate(outs):
            node.output[i] = f'{node.name}_output{i}_f32'
        body.append(node)
        for i, o in enumerate(outs):
            body.append(helper.make_node('Cast', [node.output[i]], [o], name=f'{node.name}_output{i}_cast_to_f16', to=TensorProto.FLOAT16))
    nodes = casts_in + body + casts_out
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    return m


def _quantize_uint8(w):
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    q = np.clip(np.round(w / scale) + zp, 0, 255).astype(np.uint8)
    return q, np.float32(scale), np.uint8(zp)


def to_dynamic_int8(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes = []
    count = 0
    for node in g.node:
        if node.op_type == 'MatMul' and node.input[1] in inits:
            count += 1
            p = node.name or f'matmul{count}'
            x, wname = node.input[0], node.input[1]
            q, scale, zp = _quantize_uint8(numpy_helper.to_array(inits[wname]))
            g.initializer.extend([
                numpy_helper.from_array(q, f'{wname}_quantized'),
                numpy_helper.from_array(np.array(scale, np.float32), f'{wname}_scale'),
                numpy_helper.from_array(np.array(zp, np.uint8), f'{wname}_zero_point'),
            ])
            xq, xs, xz = f'{p}/x_quantized', f'{p}/x_scale', f'{p}/x_zero_point'
            nodes.append(helper.make_node('DynamicQuantizeLinear', [x], [xq, xs, xz], name=f'{p}/DynamicQuantizeLinear'))
            nodes.append(helper.make_node('MatMulInteger', [xq, f'{wname}_quantized', xz, f'{wname}_zero_point'], [f'{p}/acc'], name=f'{p}/MatMulInteger'))
            nodes.append(helper.make_node('Cast', [f'{p}/acc'], [f'{p}/cast'], name=f'{p}/Cast', to=TensorProto.FLOAT))
            nodes.append(helper.make_node('Mul', [xs, f'{wname}_scale'], [f'{p}/scale'], name=f'{p}/ScaleMul'))
            nodes.append(helper.make_node('Mul', [f'{p}/cast', f'{p}/scale'], [node.output[0]], name=f'{p}/OutputMul'))
            continue
        if node.op_type != 'Conv' or node.input[1] not in inits:
            nodes.append(node)
            continue
        count += 1
        p = node.name or f'conv{count}'
        x, wname = node.input[0], node.input[1]
        w = numpy_helper.to_array(inits[wname])
        q, scale, zp = _quantize_uint8(w)
        g.initializer.extend([
            numpy_helper.from_array(q, f'{wname}_quantized'),
            numpy_helper.from_array(np.array(scale, np.float32), f'{wname}_scale'),
            numpy_helper.from_array(np.array(zp, np.uint8), f'{wname}_zero_point'),
        ])
        xq, xs, xz = f'{p}/x_quantized', f'{p}/x_scale', f'{p}/x_zero_point'
        nodes.append(helper.make_node('DynamicQuantizeLinear', [x], [xq, xs, xz], name=f'{p}/DynamicQuantizeLinear'))
        acc = f'{p}/ConvInteger_output'
        ci = helper.make_node('ConvInteger', [xq, f'{wname}_quantized', xz, f'{wname}_zero_point'], [acc], name=f'{p}/ConvInteger')
        ci.attribute.extend(node.attribute)
        nodes.append(ci)
        nodes.append(helper.make_node('Cast', [acc], [f'{p}/cast'], name=f'{p}/Cast', to=TensorProto.FLOAT))
        nodes.append(helper.make_node('Mul', [xs, f'{wname}_scale'], [f'{p}/scale'], name=f'{p}/ScaleMul'))
        y = node.output[0]
        if len(node.input) > 2 and node.input[2]:
            b = numpy_helper.to_array(inits[node.input[2]]).reshape(1, -1, 1, 1)
            g.initializer.append(numpy_helper.from_array(b.astype(np.float32), f'{node.input[2]}_reshaped'))
            nodes.append(helper.make_node('Mul', [f'{p}/cast', f'{p}/scale'], [f'{p}/scaled'], name=f'{p}/OutputMul'))
            nodes.append(helper.make_node('Add', [f'{p}/scaled', f'{node.input[2]}_reshaped'], [y], name=f'{p}/BiasAdd'))
        else:
            nodes.append(helper.make_node('Mul', [f'{p}/cast', f'{p}/scale'], [y], name=f'{p}/OutputMul'))
    used = {n for node in nodes for n in node.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(m)
    return m, count


def shuffled(model, seed):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = list(m.graph.node)
    random.Random(seed).shuffle(nodes)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    assert not is_topological(m.graph), 'the shuffle left the nodes in order'
    return m


def is_topological(graph):
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {''}
    for node in graph.node:
        if any(n not in known for n in node.input):
            return False
        known.update(node.output)
    return True
