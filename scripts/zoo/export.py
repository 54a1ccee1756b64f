#!/usr/bin/python3
"""Exports the model zoo (fixtures/zoo/) and its PyTorch references.

Run with Debian's PyTorch (apt-get install python3-torch python3-torchvision python3-onnx
python3-pil; nothing is downloaded, weights are random under torch.manual_seed):

  /usr/bin/python3 scripts/zoo/export.py                  # the committed small models
  /usr/bin/python3 scripts/zoo/export.py torchvision      # FCN/DeepLabV3/LRASPP -> fixtures/zoo/generated/
  /usr/bin/python3 scripts/zoo/export.py all --u2net-1024 # everything, plus the 1024x1024 nested U-Net
  /usr/bin/python3 scripts/zoo/export.py none --u2net-1024 # only the 1024x1024 nested U-Net (the memory bench's)
  /usr/bin/python3 scripts/zoo/export.py segformer-b0-like --out /tmp/zoo

Per model, in <root>/<name>/ (committed models) or <root>/generated/<name>/ (the rest):
  model.onnx            float32, opset 17, input "input" [1, 3, H, W] in [0, 1], output "output"
  model.f16.onnx        float16 weights, float32 input/output through Cast nodes
  model.int8.onnx       (u2net-like, segformer-b0-like) dynamic int8: DynamicQuantizeLinear + ConvInteger
                        per Conv, + MatMulInteger per MatMul with constant weights
  model.shuffled.onnx, model.f16.shuffled.onnx  (u2net-like) nodes out of topological order
  input.png             the input image at the model's size (astronaut.png resized); input = png / 255
  reference.json        layers, regions, class, scores, and the index of reference.bin
  reference.bin         float32 little-endian tensors: input, logits, A, dS/dA, alpha, CAM
and <root>/manifest.json (sizes, parameter counts, op lists) is updated.

The references: S = sum over the region M of the logit y^c (before a final Sigmoid); A the
layer's output (ONNX layout: NCHW, or [1, N, C] for a token layer); dS/dA by torch.autograd.grad;
alpha_k = mean over the grid of dS/dA^k; CAM = ReLU(sum_k alpha_k A^k) on the grid, not normalised.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert  # noqa: E402
from blob import Blob  # noqa: E402
from models import MODELS, init_weights  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..', 'fixtures', 'zoo'))
IMAGE = os.path.normpath(os.path.join(HERE, '..', '..', 'fixtures', 'images', 'astronaut.png'))
OPSET = 17
SEEDS = {name: 2026 + i for i, name in enumerate(MODELS)}


def load_input(h, w):
    img = Image.open(IMAGE).convert('RGB').resize((w, h), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    x = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
    return img, x


def build(name):
    spec = MODELS[name]
    torch.manual_seed(SEEDS[name])
    model = spec['build']()
    h, w = spec['size']
    g = torch.Generator().manual_seed(SEEDS[name] + 1)
    calib = torch.rand(4, 3, h, w, generator=g)
    init_weights(model, SEEDS[name], calib)
    for m in model.modules():  # in-place activations would overwrite the hooked tensors
        if hasattr(m, 'inplace'):
            m.inplace = False
    return model


def export_onnx(model, x, path):
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=OPSET, input_names=['input'], output_names=['output'], do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def scope_prefix(model, path):
    """torch.onnx (1.13+) names nodes by module scope: '/a/b/b.0/Op'; a ModuleList has no scope
    of its own, so its child is 'list.0' in place of 'list'."""
    comps, parent, parts = [], model, path.split('.')
    for i, part in enumerate(parts):
        if part.isdigit():
            comp = parts[i - 1] + '.' + part
            if isinstance(parent, nn.ModuleList):
                comps[-1] = comp
            else:
                comps.append(comp)
        else:
            comps.append(part)
        parent = parent._modules[part]
    return '/' + '/'.join(comps) + '/'


def find_tensor(graph, prefix, hook, shape, shapes):
    inside = [n for n in graph.node if n.name.startswith(prefix)]
    made_inside = {o for n in inside for o in n.output}
    inits = {i.name for i in graph.initializer}
    outside_reads = {i for n in graph.node if not n.name.startswith(prefix) for i in n.input} | {o.name for o in graph.output}
    if hook == 'out':
        cands = [o for n in inside for o in n.output if o in outside_reads]
    else:
        cands = [i for n in inside for i in n.input if i not in made_inside and i not in inits and i]
    cands = list(dict.fromkeys(cands))
    # onnx shape inference leaves tensors behind a Shape-computed Reshape without a shape: those
    # stay candidates (verify.py checks every chosen tensor's values on ONNX Runtime)
    known = [c for c in cands if shapes.get(c) == list(shape)]
    cands = known or [c for c in cands if not shapes.get(c) or 0 in shapes[c]]
    if len(cands) != 1:
        raise RuntimeError(f'{prefix} ({hook}): {len(cands)} candidate tensors of shape {list(shape)}: {cands}')
    return cands[0]


def grid_of(a, role, spec_size, ref_hw):
    """NCHW activations are their own grid; a [1, N, C] token tensor is the grid whose h·w = N
    with the input's aspect ratio (SegFormer: n = i·w + j)."""
    if a.dim() == 4:
        return a, None
    n = a.shape[1]
    h0, w0 = spec_size
    for s in (4, 8, 16, 32, 64):
        if (h0 // s) * (w0 // s) == n:
            h, w = h0 // s, w0 // s
            return a.transpose(1, 2).reshape(1, a.shape[2], h, w), [h, w]
    raise RuntimeError(f'{role}: no grid for {n} tokens')


def hooked_forward(model, x, spec):
    """The model's output, its logits (the input of a final activation module) and the layers'
    tensors (outputs, or inputs for 'in' hooks), all in the autograd graph."""
    acts, logits_box = {}, {}
    hooks = []
    for role, path, hook, _ in spec['layers']:
        mod = model.get_submodule(path)
        if hook == 'out':
            hooks.append(mod.register_forward_hook(lambda m, i, o, role=role: acts.__setitem__(role, o)))
        else:
            hooks.append(mod.register_forward_pre_hook(lambda m, i, role=role: acts.__setitem__(role, i[0])))
    final = spec.get('final')
    if final:
        hooks.append(model.get_submodule(final).register_forward_pre_hook(lambda m, i: logits_box.__setitem__('y', i[0])))
    out = model(x)
    for h in hooks:
        h.remove()
    return out, logits_box.get('y', out), acts


def seg_grad_cam(logits, acts, c, masks, roles, size):
    """Per region: S, and per layer dS/dA (autograd), alpha = mean over the grid, CAM."""
    res = {}
    for rname, msk in masks.items():
        s = (logits[0, c] * msk.to(logits.dtype)).sum()
        grads = torch.autograd.grad(s, [acts[r] for r in roles], retain_graph=True)
        res[rname] = {'S': s, 'layers': {}}
        for role, gr in zip(roles, grads):
            a4, _ = grid_of(acts[role], role, size, None)
            g4, _ = grid_of(gr, role, size, None)
            alpha = g4.mean(dim=(2, 3))[0]
            lin = (alpha[:, None, None] * a4[0]).sum(0)
            res[rname]['layers'][role] = (gr, alpha, torch.relu(lin), lin)
    return res


def relerr(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def references(name, model, x, graph, folder):
    spec = MODELS[name]
    out, logits, acts = hooked_forward(model, x, spec)
    final = spec.get('final')
    _, k, ho, wo = logits.shape
    binary = k == 1
    pi, pj = int(0.4 * ho), int(0.6 * wo)
    c = 0 if binary else int(logits[0, :, pi, pj].argmax())
    x0, y0, x1, y1 = wo // 4, ho // 4, (3 * wo) // 4 - 1, ho // 2
    regions = {
        'pixel': {'cells': [[pi, pj]]},
        'box': {'cellBox': [x0, y0, x1, y1]},
    }
    masks = {}
    for rname in regions:
        msk = torch.zeros(ho, wo)
        if rname == 'pixel':
            msk[pi, pj] = 1
        else:
            msk[y0 : y1 + 1, x0 : x1 + 1] = 1
        masks[rname] = msk
    h, w = spec['size'] if 'size' in spec else x.shape[2:]
    sy, sx = h // ho, w // wo
    regions['pixel']['imagePixel'] = [pj * sx + sx // 2, pi * sy + sy // 2]
    regions['box']['imageBox'] = [x0 * sx, y0 * sy, (x1 + 1) * sx - 1, (y1 + 1) * sy - 1]

    shapes = {}
    inferred = onnx.shape_inference.infer_shapes(onnx.load(os.path.join(folder, 'model.onnx')))
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]

    blob = Blob()
    blob.add('input', x)
    blob.add('logits', logits)
    layers = []
    roles = [r for r, _, _, _ in spec['layers']]
    for role, path, hook, why in spec['layers']:
        a = acts[role]
        onnx_name = find_tensor(graph, scope_prefix(model, path), hook, a.shape, shapes)
        _, grid = grid_of(a, role, spec['size'], (ho, wo))
        layers.append({'role': role, 'onnx': onnx_name, 'module': path, 'hook': 'output' if hook == 'out' else 'input', 'shape': list(a.shape),
                       'layout': 'NCHW' if a.dim() == 4 else 'NLC (tokens, n = i*w + j)', 'grid': grid, 'why': why})
        blob.add(f'A/{role}', a)
    res = seg_grad_cam(logits, acts, c, masks, roles, spec['size'])
    scores = {}
    for rname, r in res.items():
        scores[rname] = float(r['S'])
        for role, (gr, alpha, cam, lin) in r['layers'].items():
            blob.add(f'dSdA/{role}/{rname}', gr)
            blob.add(f'alpha/{role}/{rname}', alpha)
            blob.add(f'cam/{role}/{rname}', cam)
            blob.add(f'camLinear/{role}/{rname}', lin)
    # The float32 noise floor: the same computation in float64, compared (largest difference
    # over the largest |value|): a test cannot ask an engine for more than this.
    m64 = copy.deepcopy(model).double()
    _, logits64, acts64 = hooked_forward(m64, x.double(), spec)
    res64 = seg_grad_cam(logits64, acts64, c, masks, roles, spec['size'])
    floor = {'logits': relerr(logits, logits64), 'A': {r: relerr(acts[r], acts64[r]) for r in roles}, 'alpha': {}, 'cam': {}}
    for rname in masks:
        for role in roles:
            blob.add(f'alpha64/{role}/{rname}', res64[rname]['layers'][role][1])
            blob.add(f'cam64/{role}/{rname}', res64[rname]['layers'][role][2])
        floor['alpha'][rname] = {r: relerr(res[rname]['layers'][r][1], res64[rname]['layers'][r][1]) for r in roles}
        floor['cam'][rname] = {r: relerr(res[rname]['layers'][r][2], res64[rname]['layers'][r][2]) for r in roles}
    blob.write(os.path.join(folder, 'reference.bin'))
    ref = {
        'model': name,
        'file': 'model.onnx',
        'torch': torch.__version__,
        'input': {'name': 'input', 'shape': list(x.shape), 'image': 'input.png', 'range': [0, 1],
                  'how': 'fixtures/images/astronaut.png resized with PIL bilinear to the model size, 8-bit, then / 255'},
        'output': {'name': 'output', 'shape': list(out.shape), 'activation': 'Sigmoid' if final else None,
                   'note': 'logits are the input of the final Sigmoid' if final else 'the output is the logits'},
        'class': c,
        'binary': binary,
        'classNote': ('one sigmoid channel: S is the sum of its logit (class 1 in the project\'s binary convention)' if binary
                      else 'the class argmax of the logits at the pixel region'),
        'regions': regions,
        'regionNote': 'cells are (row, col) of the logits grid; cellBox and imageBox are x0,y0,x1,y1 with corners included',
        'scores': scores,
        'float32VsFloat64': floor,
        'float32VsFloat64Note': 'the PyTorch float32 results against the same model in float64: max |f32 - f64| / max |f64| per tensor',
        'layers': layers,
        'bin': 'reference.bin',
        'tensors': blob.index,
        'tensorNote': ('float32 little-endian; A and dSdA in the ONNX tensor layout; alpha [C]; cam [h, w] on the grid, ReLU(sum alpha_k A^k), '
                       'not normalised; camLinear the same before the ReLU (a CAM can be all zero); alpha64/cam64 the same computed in float64 '
                       '(then stored as float32)'),
    }
    with open(os.path.join(folder, 'reference.json'), 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
    return ref


def op_counts(m):
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


def export_model(name, root, size=None, suffix=''):
    spec = MODELS[name]
    folder = os.path.join(root, name + suffix) if spec['commit'] and not suffix else os.path.join(root, 'generated', name + suffix)
    os.makedirs(folder, exist_ok=True)
    h, w = size or spec['size']
    model = build(name)  # weights (BN statistics included) from the model's own size, whatever the export size
    img, x = load_input(h, w)
    path = os.path.join(folder, 'model.onnx')
    m32 = export_onnx(model, x, path)
    entry = {'folder': os.path.relpath(folder, root), 'input': [1, 3, h, w], 'source': spec['source'], 'committed': spec['commit'] and not suffix,
             'parameters': sum(p.numel() for p in model.parameters()), 'opset': OPSET, 'ops': op_counts(m32), 'files': {}}
    entry['files']['model.onnx'] = os.path.getsize(path)
    m16 = convert.to_float16(m32)
    onnx.save(m16, os.path.join(folder, 'model.f16.onnx'))
    entry['files']['model.f16.onnx'] = os.path.getsize(os.path.join(folder, 'model.f16.onnx'))
    entry['opsF16'] = op_counts(m16)
    if name in ('u2net-like', 'segformer-b0-like'):
        m8, n = convert.to_dynamic_int8(m32)
        onnx.save(m8, os.path.join(folder, 'model.int8.onnx'))
        entry['files']['model.int8.onnx'] = os.path.getsize(os.path.join(folder, 'model.int8.onnx'))
        entry['opsInt8'] = op_counts(m8)
        entry['int8Quantized'] = n
        if not suffix and name == 'u2net-like':
            for src, dst in ((m32, 'model.shuffled.onnx'), (m16, 'model.f16.shuffled.onnx')):
                onnx.save(convert.shuffled(src, SEEDS[name]), os.path.join(folder, dst))
                entry['files'][dst] = os.path.getsize(os.path.join(folder, dst))
    if not suffix:
        img.save(os.path.join(folder, 'input.png'))
        ref = references(name, model, x, m32.graph, folder)
        entry['layers'] = [{k: l[k] for k in ('role', 'onnx', 'module', 'shape', 'grid', 'why')} for l in ref['layers']]
        entry['class'] = ref['class']
        for f in ('input.png', 'reference.json', 'reference.bin'):
            entry['files'][f] = os.path.getsize(os.path.join(folder, f))
    print(f'{name}{suffix}: {entry["parameters"]} parameters, ' + ', '.join(f'{k} {v / 1e6:.2f} MB' for k, v in entry['files'].items()), flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('names', nargs='*', help="model names, 'committed' (default), 'torchvision', 'all' or 'none'")
    ap.add_argument('--out', default=ROOT, help='root folder (default fixtures/zoo)')
    ap.add_argument('--u2net-1024', action='store_true', help='also the nested U-Net at 1024x1024 (generated/u2net-like-1024)')
    args = ap.parse_args()
    names = []
    for n in args.names or ['committed']:
        if n == 'none':
            pass
        elif n == 'all':
            names += list(MODELS)
        elif n == 'committed':
            names += [k for k, v in MODELS.items() if v['commit']]
        elif n == 'torchvision':
            names += [k for k, v in MODELS.items() if v['source'] == 'torchvision']
        elif n in MODELS:
            names.append(n)
        else:
            ap.error(f'unknown model {n}; known: {", ".join(MODELS)}')
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    man_path = os.path.join(args.out, 'manifest.json')
    manifest = json.load(open(man_path)) if os.path.exists(man_path) else {}
    manifest['torch'] = torch.__version__
    manifest.setdefault('models', {})
    jobs = [(name, None, '') for name in dict.fromkeys(names)]
    if args.u2net_1024:
        jobs.append(('u2net-like', (1024, 1024), '-1024'))
    for name, size, suffix in jobs:
        manifest['models'][name + suffix] = export_model(name, args.out, size, suffix)
        with open(man_path, 'w') as f:  # after each model, so an interrupted run keeps the others
            json.dump(manifest, f, indent=1)
            f.write('\n')


if __name__ == '__main__':
    main()
