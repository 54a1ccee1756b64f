#!/usr/bin/python3
"""Tries the project's CLI (node bin/seg-grad-cam.js; run `npm run build` first) on every zoo
model file, as a user would, and compares what it prints with the PyTorch references:

  layers  -m FILE --json                        exit code, layer count, the marked bottleneck,
                                                whether the reference layers are listed
  predict -m FILE -i input.png --json           exit code; label agreement with PyTorch's argmax
                                                (or 0.5 threshold) on every output cell
  explain -m FILE -i input.png --class c --layer L --pixel|--box … --json
                                                exit code; α and the raw CAM against PyTorch's
                                                (largest difference relative to the largest value)

  /usr/bin/python3 scripts/zoo/try-cli.py [ROOT [MODEL…]] [--quick|--minimal] [--keep=DIR] [--results=FILE]
Writes ROOT/cli-results.json; one line per run on stdout. --quick: pixel region at the default
layer only for the variants (float16, int8, shuffled), both regions at the three layers for
float32 (the default: the pixel at every layer for the variants too). --keep=DIR keeps the CLI's
explain JSON files. --minimal: as --quick, and the pixel region only (for the large models on a
busy machine).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..'))
CLI = os.path.join(REPO, 'bin', 'seg-grad-cam.js')
VARIANTS = ('model.onnx', 'model.f16.onnx', 'model.int8.onnx', 'model.shuffled.onnx', 'model.f16.shuffled.onnx')


def cli(args, timeout=900):
    p = subprocess.run(['node', CLI] + args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    err = [l for l in p.stderr.strip().splitlines() if l.strip() and 'ExperimentalWarning' not in l and 'node --trace' not in l]
    return p.returncode, p.stdout, (err[-1] if err else '')


def tensor(blob, index, key):
    e = index[key]
    return np.frombuffer(blob, '<f4', int(np.prod(e['shape'])), e['offset']).reshape(e['shape'])


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size != b.size:
        return f'size {a.size} vs {b.size}'
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def compare(cli_values, ref, ref64):
    """Relative error (largest difference / largest reference value) and absolute error against
    PyTorch's float32 reference. The CLI's JSON is unrounded (src/io/json.ts); `roundedUnits`
    (the error after rounding both to 1e-6, in units of 1e-6) is kept for older result files; and
    PyTorch float32's own error against float64."""
    a, b = np.asarray(cli_values, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    if a.size != b.size:
        return {'error': f'size {a.size} vs {b.size}'}
    return {'rel': rel(a, b), 'abs': float(np.abs(a - b).max()), 'maxRef': float(np.abs(b).max()),
            'roundedUnits': float(np.abs(a - np.round(b * 1e6) / 1e6).max() * 1e6), 'torchF32VsF64Rel': rel(ref, ref64)}


def label_agreement(png, labels):
    """Pixel agreement without knowing the palette: each PyTorch class must map to one colour."""
    img = np.asarray(Image.open(png).convert('RGB')).astype(np.int64)
    h, w = labels.shape
    if img.shape[:2] != (h, w):  # output grid smaller than the image: sample at cell centres
        sy, sx = img.shape[0] // h, img.shape[1] // w
        img = img[sy // 2 :: sy, sx // 2 :: sx][:h, :w]
    code = img[..., 0] * 65536 + img[..., 1] * 256 + img[..., 2]
    ok = 0
    for c in np.unique(labels):
        cols, counts = np.unique(code[labels == c], return_counts=True)
        ok += counts.max()
    # a colour shared by two classes is a disagreement too
    used = {}
    for c in np.unique(labels):
        cols, counts = np.unique(code[labels == c], return_counts=True)
        col = int(cols[counts.argmax()])
        if col in used:
            ok -= min(counts.max(), used[col])
        used[col] = counts.max()
    return ok / labels.size


def try_model(folder, quick, tmp, keep, minimal=False):
    ref = json.load(open(os.path.join(folder, 'reference.json')))
    blob = open(os.path.join(folder, ref['bin']), 'rb').read()
    logits = tensor(blob, ref['tensors'], 'logits')[0]
    labels = (logits[0] > 0) if ref['binary'] else logits.argmax(0)
    img = os.path.join(folder, 'input.png')
    cls = '1' if ref['binary'] else str(ref['class'])
    regions = {'pixel': ['--pixel', ','.join(map(str, ref['regions']['pixel']['imagePixel']))],
               'box': ['--box', ','.join(map(str, ref['regions']['box']['imageBox']))]}
    results = {}
    for v in VARIANTS:
        f = os.path.join(folder, v)
        if not os.path.exists(f):
            continue
        r = {}
        code, out, err = cli(['layers', '-m', f, '--json'])
        r['layers'] = {'exit': code, 'message': err}
        if code == 0:
            try:
                listed = json.loads(out)
                items = listed if isinstance(listed, list) else listed.get('layers', [])
                names = [i.get('name') for i in items]
                r['layers'].update(count=len(items), bottleneck=next((i.get('name') for i in items if i.get('bottleneck')), None),
                                   referenceListed={l['role']: l['onnx'] in names for l in ref['layers']})
            except (ValueError, AttributeError) as e:
                r['layers']['parse'] = str(e)
        png = os.path.join(tmp, 'pred.png')
        code, out, err = cli(['predict', '-m', f, '-i', img, '--json', '--out', png])
        r['predict'] = {'exit': code, 'message': err}
        if code == 0:
            r['predict']['labelAgreement'] = label_agreement(png, labels)
        runs = []
        f32 = v == 'model.onnx'
        for l in ref['layers'] + [{'role': 'default', 'onnx': None}]:
            for rname, rargs in regions.items():
                if not f32 and quick and (l['onnx'] is not None or rname != 'pixel'):
                    continue
                if minimal and rname != 'pixel':
                    continue
                if not f32 and not quick and rname != 'pixel':
                    continue
                js = os.path.join(tmp, 'explain.json')
                if os.path.exists(js):
                    os.remove(js)
                args = ['explain', '-m', f, '-i', img, '--class', cls, '--json', js, '--out', os.path.join(tmp, 'e.png')] + rargs
                if l['onnx']:
                    args += ['--layer', l['onnx']]
                code, out, err = cli(args)
                run = {'layer': l['role'], 'region': rname, 'exit': code, 'message': err}
                if code == 0 and os.path.exists(js):
                    e = json.load(open(js))
                    run['layerChosen'] = e.get('layer', {}).get('name') if isinstance(e.get('layer'), dict) else e.get('layer')
                    run['ms'] = e.get('milliseconds')
                    role = l['role'] if l['onnx'] else next((x['role'] for x in ref['layers'] if x['onnx'] == run['layerChosen']), None)
                    if role:
                        alpha = tensor(blob, ref['tensors'], f'alpha/{role}/{rname}')
                        cam = tensor(blob, ref['tensors'], f'cam/{role}/{rname}')
                        run['alpha'] = compare(e['weights'], alpha, tensor(blob, ref['tensors'], f'alpha64/{role}/{rname}'))
                        run['cam'] = compare(e['cam'], cam, tensor(blob, ref['tensors'], f'cam64/{role}/{rname}'))
                        run['scoreRelErr'] = rel([e['scoreValue']], [ref['scores'][rname]])
                        run['empty'] = e.get('empty')
                    if keep:
                        os.makedirs(keep, exist_ok=True)
                        os.replace(js, os.path.join(keep, f'{ref["model"]}.{v}.{l["role"]}.{rname}.json'))
                runs.append(run)
                extra = ' '.join(f'{k} rel {run[k].get("rel", 0):.2e} abs {run[k].get("abs", 0):.1e} rounded-units {run[k].get("roundedUnits", 0):.0f}' if 'rel' in run.get(k, {}) else f'{k} {run.get(k)}'
                                 for k in ('alpha', 'cam') if k in run) + (f' S rel {run["scoreRelErr"]:.1e}' if 'scoreRelErr' in run else '') + (f' layer {run.get("layerChosen")}' if l['onnx'] is None else '')
                print(f'  {ref["model"]}/{v} explain {l["role"]} {rname}: exit {code} {err if code else extra}', flush=True)
        r['explain'] = runs
        results[v] = r
        print(f'{ref["model"]}/{v}: layers exit {r["layers"]["exit"]} ({r["layers"].get("count")}, bottleneck {r["layers"].get("bottleneck")}) {r["layers"]["message"] if r["layers"]["exit"] else ""}; '
              f'predict exit {r["predict"]["exit"]} {r["predict"].get("labelAgreement", r["predict"]["message"])}', flush=True)
    return results


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    quick = '--quick' in sys.argv
    minimal = '--minimal' in sys.argv
    keep = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--keep=')), None)
    root = args[0] if args else os.path.join(REPO, 'fixtures', 'zoo')
    out_path = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--results=')), os.path.join(root, 'cli-results.json'))
    out = json.load(open(out_path)) if os.path.exists(out_path) else {}
    only = set(args[1:])
    with tempfile.TemporaryDirectory() as tmp:
        for base in (root, os.path.join(root, 'generated')):
            if not os.path.isdir(base):
                continue
            for name in sorted(os.listdir(base)):
                folder = os.path.join(base, name)
                if (only and name not in only) or not os.path.exists(os.path.join(folder, 'reference.json')):
                    continue
                out[name] = try_model(folder, quick or minimal, tmp, os.path.join(keep, name) if keep else None, minimal)
                with open(out_path, 'w') as f:
                    json.dump(out, f, indent=1)
                    f.write('\n')


if __name__ == '__main__':
    main()
