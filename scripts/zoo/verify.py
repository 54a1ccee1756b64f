#!/usr/bin/python3
"""Checks every zoo model against its PyTorch reference on ONNX Runtime (onnxruntime-node, through
scripts/zoo/ort-run.ts; Debian has no onnxruntime for Python):

- the layer tensors named in reference.json are added as graph outputs (with the onnx package) and
  their values compared with the hooked PyTorch activations A: this proves the ONNX names;
- the model's output against PyTorch's (Sigmoid of the logits for a model that ends in one);
- the argmax (or, for one sigmoid channel, the 0.5 threshold) agreement of every variant
  (float16, int8, shuffled) with PyTorch's, and their largest output difference.

  /usr/bin/python3 scripts/zoo/verify.py [ROOT [MODEL…]]   (ROOT defaults to fixtures/zoo; with
  models named, only those are re-checked and merged into the existing verification.json)
Writes ROOT/verification.json and prints one line per model file.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..'))
VARIANTS = ('model.onnx', 'model.f16.onnx', 'model.int8.onnx', 'model.shuffled.onnx', 'model.f16.shuffled.onnx')


def tensor(blob, index, key):
    e = index[key]
    n = int(np.prod(e['shape']))
    return np.frombuffer(blob, '<f4', n, e['offset']).reshape(e['shape'])


def probe(path, names, tmp):
    m = onnx.load(path)
    elem = TensorProto.FLOAT16 if '.f16.' in os.path.basename(path) else TensorProto.FLOAT
    for n in names:
        m.graph.output.append(helper.make_tensor_value_info(n, elem, None))
    out = os.path.join(tmp, 'probe.onnx')
    onnx.save(m, out)
    return out


def run(model, x, names, tmp):
    inp, out = os.path.join(tmp, 'input.bin'), os.path.join(tmp, 'out.bin')
    x.astype('<f4').tofile(inp)
    _, _, h, w = x.shape
    cmd = ['node', '--import', 'tsx', os.path.join(HERE, 'ort-run.ts'), model, inp, str(h), str(w), out] + names
    res = json.loads(subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    if 'error' in res:
        return res, None
    data = open(out, 'rb').read()
    return res, {k: np.frombuffer(data, '<f4', int(np.prod(v['shape'])), v['offset']).reshape(v['shape']) for k, v in res['outputs'].items()}


def labels(y, binary):
    return (y[0, 0] > 0.5) if binary else y[0].argmax(0)


def check(folder):
    ref = json.load(open(os.path.join(folder, 'reference.json')))
    blob = open(os.path.join(folder, ref['bin']), 'rb').read()
    x = tensor(blob, ref['tensors'], 'input')
    logits = tensor(blob, ref['tensors'], 'logits')
    expected = 1 / (1 + np.exp(-logits)) if ref['output']['activation'] == 'Sigmoid' else logits
    binary = ref['binary']
    names = [l['onnx'] for l in ref['layers']]
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in VARIANTS:
            path = os.path.join(folder, v)
            if not os.path.exists(path):
                continue
            res, outs = run(probe(path, names, tmp), x, ['output'] + names, tmp)
            if outs is None:
                result[v] = {'error': res['error']}
                print(f'{ref["model"]}/{v}: ERROR {res["error"]}')
                continue
            y = outs['output']
            r = {'ms': res['ms'], 'outputMaxAbsDiff': float(np.abs(y - expected).max()),
                 'labelAgreement': float((labels(y, binary) == labels(expected, binary)).mean()), 'layers': {}}
            for l in ref['layers']:
                a = tensor(blob, ref['tensors'], f'A/{l["role"]}')
                got = outs[l['onnx']]
                r['layers'][l['role']] = {'onnx': l['onnx'], 'shapeMatches': list(got.shape) == list(a.shape),
                                          'maxAbsDiff': float(np.abs(got.reshape(a.shape) - a).max()) if got.size == a.size else None,
                                          'maxAbs': float(np.abs(a).max())}
            result[v] = r
            lay = ', '.join(f'{k} {d["maxAbsDiff"]:.2e}/{d["maxAbs"]:.2e}' for k, d in r['layers'].items())
            print(f'{ref["model"]}/{v}: output diff {r["outputMaxAbsDiff"]:.2e}, labels agree {r["labelAgreement"]:.4f}, A diff/max: {lay}', flush=True)
    return result


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, 'fixtures', 'zoo')
    only = set(sys.argv[2:])
    path = os.path.join(root, 'verification.json')
    out = json.load(open(path)) if only and os.path.exists(path) else {}
    for base in (root, os.path.join(root, 'generated')):
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if (not only or name in only) and os.path.exists(os.path.join(folder, 'reference.json')):
                out[name] = check(folder)
    with open(os.path.join(root, 'verification.json'), 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
